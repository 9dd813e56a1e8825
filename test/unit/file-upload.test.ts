import { sameCompositeChecksum } from '../../src/adapters/aws/complete-upload';
import { compositeCrc32, isRetryablePartError, sliceStream } from '../../src/adapters/aws/file-upload';

const withStatus = (name: string, httpStatusCode: number): object => ({
  name,
  $metadata: { httpStatusCode },
});

describe('isRetryablePartError', () => {
  it.each([
    [
      'a dropped connection (no HTTP status)',
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      true,
    ],
    ['500 InternalError', withStatus('InternalError', 500), true],
    ['503 SlowDown', withStatus('SlowDown', 503), true],
    ['400 RequestTimeout', withStatus('RequestTimeout', 400), true],
    ['429 throttling', withStatus('TooManyRequests', 429), true],
    [
      'an error the SDK marks retryable',
      { name: 'X', $retryable: {}, $metadata: { httpStatusCode: 400 } },
      true,
    ],
    ['403 AccessDenied', withStatus('AccessDenied', 403), false],
    ['404 NoSuchUpload', withStatus('NoSuchUpload', 404), false],
    ['400 BadDigest (the bytes changed)', withStatus('BadDigest', 400), false],
    ['our own abort', Object.assign(new Error('aborted'), { name: 'AbortError' }), false],
  ])('%s -> %s', (_what, err, retry) => {
    expect(isRetryablePartError(err)).toBe(retry);
  });
});

describe('compositeCrc32', () => {
  // values from Python's binascii.crc32: crc32(b"123456789") = cbf43926, crc32(b"abc") = 352441c2,
  // and the CRC32 of those 8 bytes joined
  it('is the CRC32 of the part CRC32s, with the part count', () => {
    expect(compositeCrc32(['y/Q5Jg==', 'NSRBwg=='])).toBe('25ItdA==-2');
  });

  it.each([
    ['25ItdA==-2', '25ItdA==-2', true],
    ['25ItdA==', '25ItdA==-2', true],
    ['25ItdA==-3', '25ItdA==-2', false],
    ['y/Q5Jg==-2', '25ItdA==-2', false],
  ])('reported %s vs sent %s -> %s', (reported, expected, same) => {
    expect(sameCompositeChecksum(reported, expected)).toBe(same);
  });
});

describe('sliceStream (a buffered part as the socket writes it)', () => {
  const KiB = 1024;
  const MiB = 1024 * KiB;
  const slicesOf = async (bytes: Buffer): Promise<Buffer[]> => {
    const out: Buffer[] = [];
    for await (const chunk of sliceStream(bytes)) out.push(chunk as Buffer);
    return out;
  };

  it.each([0, 1, 64 * KiB, 64 * KiB + 1, 200_000, 8 * MiB, 8 * MiB + 5])(
    'gives back %d bytes whole, in order, as views of the same memory',
    async (size) => {
      const bytes = Buffer.from(Array.from({ length: size }, (_, i) => (i * 7) & 0xff));
      const slices = await slicesOf(bytes);
      expect(Buffer.concat(slices).equals(bytes)).toBe(true);
      for (const s of slices) expect(s.buffer).toBe(bytes.buffer);
    },
  );

  it('sends an 8 MiB part as a small first slice, 1 MiB slices and a small last slice', async () => {
    // node's TLS layer copies a write joined with the headers before it or the request's end after it
    const sizes = (await slicesOf(Buffer.alloc(8 * MiB))).map((s) => s.length);
    expect(sizes[0]).toBe(64 * KiB);
    expect(sizes[sizes.length - 1]).toBe(64 * KiB);
    expect(Math.max(...sizes)).toBe(MiB);
    expect(sizes.length).toBe(10);
  });
});
