import { createServer, type Server } from 'node:http';
import { HttpPublicAddress } from '../../src/adapters/system/public-address';
import { UserError } from '../../src/core/errors';
import { parseCidr, parseSshCidrSetting } from '../../src/core/ssh-ingress';

describe('ssh-cidr setting', () => {
  it('unset or none leaves the security group alone; auto stands alone; blocks are canonical', () => {
    expect(parseSshCidrSetting([])).toEqual({ mode: 'none' });
    expect(parseSshCidrSetting([' ', 'none'])).toEqual({ mode: 'none' });
    expect(parseSshCidrSetting(['AUTO'])).toEqual({ mode: 'auto' });
    expect(parseSshCidrSetting(['203.0.113.7', '10.1.0.0/16', '2001:DB8::/32', '203.0.113.7/32'])).toEqual({
      mode: 'cidrs',
      cidrs: ['203.0.113.7/32', '10.1.0.0/16', '2001:db8::/32'],
    });
  });

  it.each([
    ['auto', '10.0.0.0/8'],
    ['10.0.0.1/24'],
    ['300.1.1.1/32'],
    ['10.0.0.0/33'],
    ['runner'],
    ['2001:db8::/129'],
  ])('refuses %s with one line (exit 2)', (...values) => {
    let err: unknown;
    try {
      parseSshCidrSetting(values);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(/^ssh-cidr: /);
    expect((err as Error).message).not.toContain('\n');
  });

  it('names the block a CIDR with host bits means', () => {
    expect(() => parseCidr('192.168.1.77/24')).toThrow('the block is 192.168.1.0/24');
    expect(parseCidr('0.0.0.0/0')).toBe('0.0.0.0/0');
  });
});

describe('HttpPublicAddress (ssh-cidr auto)', () => {
  let server: Server;
  let url: string;
  let answer: (res: import('node:http').ServerResponse) => void;
  beforeAll(async () => {
    server = createServer((_req, res) => answer(res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('turns the answer into a /32', async () => {
    answer = (res) => res.end('192.0.2.44\n');
    await expect(new HttpPublicAddress({ url }).lookup()).resolves.toBe('192.0.2.44/32');
  });

  it('says so when the answer is not an address, the status is bad, or no answer comes in time', async () => {
    answer = (res) => res.end('<html>captive portal</html>');
    await expect(new HttpPublicAddress({ url }).lookup()).rejects.toThrow(
      /did not answer with an IPv4 address/,
    );
    answer = (res) => {
      res.statusCode = 503;
      res.end();
    };
    await expect(new HttpPublicAddress({ url }).lookup()).rejects.toThrow(/HTTP 503/);
    answer = () => undefined; // never answers
    const started = Date.now();
    await expect(new HttpPublicAddress({ url, timeoutMs: 300 }).lookup()).rejects.toThrow(/no answer within/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('stops when the command is cancelled', async () => {
    answer = () => undefined;
    const ac = new AbortController();
    const p = new HttpPublicAddress({ url, timeoutMs: 60_000 }).lookup(ac.signal);
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toThrow(/cancelled/);
  });
});
