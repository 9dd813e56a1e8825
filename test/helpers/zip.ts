import { crc32, deflateRawSync } from 'node:zlib';

/** One entry of a hand-built zip: every field an attacker controls can be set. */
export interface ZipEntrySpec {
  name: string | Buffer;
  data?: Buffer | string;
  /** 0 stored, 8 deflate (default: deflate for data, stored for empty entries). */
  method?: number;
  /** High byte of "version made by": 3 unix (default), 2 VMS, 0 FAT, 10 NTFS. */
  host?: number;
  /** Unix mode in the high 16 bits of the external attributes (default 0o100644, 0o040755 for names ending in /). */
  mode?: number;
  /** The whole external attributes field, when mode is not enough (DOS bits). */
  externalAttributes?: number;
  /** Uncompressed size written in the headers, in place of the real one. */
  declaredSize?: number;
  /** Central and local extra field. */
  extra?: Buffer;
  /** General purpose flags (bit 11: UTF-8 names, bit 0: encrypted). */
  flags?: number;
  /** Central directory entry pointing at the local header and data of an earlier entry (overlap bomb). */
  sameDataAs?: number;
}

/** A zip archive written byte by byte (no zip tool), so tests can build what no honest tool would. */
export function buildZip(entries: ZipEntrySpec[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  const offsets: number[] = [];
  const sizes: { compressed: number; crc: number; size: number }[] = [];
  let offset = 0;
  entries.forEach((e, i) => {
    const name = Buffer.isBuffer(e.name) ? e.name : Buffer.from(e.name, 'utf8');
    const data = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? '');
    const method = e.method ?? (data.length > 0 ? 8 : 0);
    const extra = e.extra ?? Buffer.alloc(0);
    const isDir = name.toString('latin1').endsWith('/');
    const mode = e.mode ?? (isDir ? 0o040755 : 0o100644);
    const external = e.externalAttributes ?? ((mode << 16) >>> 0) | (isDir ? 0x10 : 0);
    let local: number;
    let info: { compressed: number; crc: number; size: number };
    if (e.sameDataAs !== undefined) {
      local = offsets[e.sameDataAs];
      info = sizes[e.sameDataAs];
    } else {
      const body = method === 8 ? deflateRawSync(data) : data;
      info = { compressed: body.length, crc: crc32(data), size: e.declaredSize ?? data.length };
      const h = Buffer.alloc(30);
      h.writeUInt32LE(0x04034b50, 0);
      h.writeUInt16LE(20, 4);
      h.writeUInt16LE(e.flags ?? 0, 6);
      h.writeUInt16LE(method, 8);
      h.writeUInt16LE(0, 10); // time
      h.writeUInt16LE(0x21, 12); // 1980-01-01
      h.writeUInt32LE(info.crc, 14);
      h.writeUInt32LE(info.compressed, 18);
      h.writeUInt32LE(info.size, 22);
      h.writeUInt16LE(name.length, 26);
      h.writeUInt16LE(extra.length, 28);
      local = offset;
      locals.push(h, name, extra, body);
      offset += h.length + name.length + extra.length + body.length;
    }
    offsets.push(local);
    sizes.push(info);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(((e.host ?? 3) << 8) | 30, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(e.flags ?? 0, 8);
    c.writeUInt16LE(e.sameDataAs !== undefined ? (entries[e.sameDataAs].method ?? 8) : method, 10);
    c.writeUInt16LE(0, 12);
    c.writeUInt16LE(0x21, 14);
    c.writeUInt32LE(info.crc, 16);
    c.writeUInt32LE(info.compressed, 20);
    c.writeUInt32LE(info.size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(extra.length, 30);
    c.writeUInt16LE(0, 32); // comment
    c.writeUInt16LE(0, 34); // disk
    c.writeUInt16LE(0, 36); // internal attributes
    c.writeUInt32LE(external >>> 0, 38);
    c.writeUInt32LE(local, 42);
    centrals.push(c, name, extra);
    void i;
  });
  const central = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(central.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, central, end]);
}

/** Info-ZIP Unicode Path extra field (0x7075): the name an unzipper uses instead of the header's. */
export function unicodePathExtra(headerName: Buffer, unicodeName: string): Buffer {
  const u = Buffer.from(unicodeName, 'utf8');
  const b = Buffer.alloc(4 + 5 + u.length);
  b.writeUInt16LE(0x7075, 0);
  b.writeUInt16LE(5 + u.length, 2);
  b.writeUInt8(1, 4);
  b.writeUInt32LE(crc32(headerName), 5);
  u.copy(b, 9);
  return b;
}

/** Every malicious archive the unpackers must refuse, with the reason each refusal names. */
export function maliciousZips(): { label: string; zip: Buffer; reason: RegExp }[] {
  const ok = { name: 'ok.txt', data: 'fine' };
  const linkName = Buffer.from('passwd');
  return [
    {
      label: 'unix symlink',
      zip: buildZip([ok, { name: 'passwd', data: '/etc/passwd', mode: 0o120777 }]),
      reason: /"passwd" \(symbolic link \(made by unix\)\)/,
    },
    {
      label: 'VMS symlink',
      zip: buildZip([ok, { name: '.model-pipeline', data: '/tmp', host: 2, mode: 0o120777 }]),
      reason: /symbolic link \(made by VMS\)/,
    },
    {
      label: 'FAT host symlink bits',
      zip: buildZip([ok, { name: linkName, data: '../..', host: 0, mode: 0o120777 }]),
      reason: /symbolic link \(made by host 0\)/,
    },
    {
      label: 'NTFS reparse point',
      zip: buildZip([ok, { name: 'lnk', data: 'x', host: 10, externalAttributes: 0x420 }]),
      reason: /reparse point/,
    },
    {
      label: '../ name',
      zip: buildZip([ok, { name: '../escape.txt', data: 'x' }]),
      reason: /"\.\.\/escape\.txt" \("\.\." in the name\)/,
    },
    {
      label: 'nested ..',
      zip: buildZip([ok, { name: 'a/../../escape.txt', data: 'x' }]),
      reason: /"\.\." in the name/,
    },
    {
      label: 'absolute name',
      zip: buildZip([ok, { name: '/tmp/escape.txt', data: 'x' }]),
      reason: /absolute name/,
    },
    {
      label: 'backslash name',
      zip: buildZip([ok, { name: '..\\escape.txt', data: 'x' }]),
      reason: /backslash in the name/,
    },
    {
      label: 'drive letter',
      zip: buildZip([ok, { name: 'C:/escape.txt', data: 'x' }]),
      reason: /drive letter/,
    },
    {
      label: 'unicode path extra with ..',
      zip: buildZip([
        ok,
        { name: 'safe.txt', data: 'x', extra: unicodePathExtra(Buffer.from('safe.txt'), '../escape.txt') },
      ]),
      reason: /"\.\.\/escape\.txt" \("\.\." in the name\)/,
    },
    {
      label: 'character device',
      zip: buildZip([ok, { name: 'tty', data: '', mode: 0o020666 }]),
      reason: /"tty" \(character device/,
    },
    {
      label: 'named pipe',
      zip: buildZip([ok, { name: 'fifo', data: '', mode: 0o010644 }]),
      reason: /named pipe/,
    },
    {
      label: 'duplicate names',
      zip: buildZip([ok, { name: 'ok.txt', data: 'evil' }]),
      reason: /"ok\.txt" \(duplicate name\)/,
    },
    {
      label: 'file and folder of the same name',
      zip: buildZip([ok, { name: 'ok.txt/inner', data: 'x' }]),
      reason: /inside "ok\.txt", which is a file/,
    },
    {
      label: 'overlapping entries (bomb)',
      zip: buildZip([
        { name: 'a', data: Buffer.alloc(10000) },
        { name: 'b', sameDataAs: 0 },
      ]),
      reason: /overlaps "a": a zip bomb/,
    },
    {
      label: 'declared sizes past the limit (bomb)',
      zip: buildZip(
        Array.from({ length: 40 }, (_, i) => ({
          name: `big${i}`,
          data: 'x',
          method: 8,
          declaredSize: 0xfffffff0,
        })),
      ),
      reason: /more than the limit of/,
    },
    {
      label: 'ratio (bomb)',
      zip: buildZip([{ name: 'zeros', data: Buffer.alloc(80 * 1024 * 1024) }]),
      reason: /:1, more than 100:1\): a zip bomb/,
    },
  ];
}
