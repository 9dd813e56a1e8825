import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP proxy on 127.0.0.1 in front of moto that can lose answers: the request reaches moto (which acts
 * on it), the answer is thrown away and the client's connection reset, as when a response is lost.
 */
export interface DropProxy {
  url: string;
  /** Requests forwarded, by EC2 Action. */
  actions: string[];
  /** Decides per request (by its EC2 Action) whether moto's answer is dropped. */
  drop: (action: string) => boolean;
  /** Milliseconds to hold each answer of this action (EC2 Action, else the HTTP method) before sending it. */
  delay: (action: string) => number;
  /** An answer of the proxy's own instead of moto's (the request never reaches moto), e.g. an EC2 error. */
  answer: (action: string, body: string) => { status: number; body: string } | undefined;
  close(): Promise<void>;
}

export async function startDropProxy(target: string, drop: (action: string) => boolean): Promise<DropProxy> {
  const upstream = new URL(target);
  const proxy: DropProxy = {
    url: '',
    actions: [],
    drop,
    delay: () => 0,
    answer: () => undefined,
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const action = /(?:^|&)Action=([A-Za-z]+)/.exec(body.toString('utf8'))?.[1] ?? req.method ?? '?';
      proxy.actions.push(action);
      const own = proxy.answer(action, body.toString('utf8'));
      if (own) {
        res.writeHead(own.status, { 'content-type': 'text/xml' });
        res.end(own.body);
        return;
      }
      const forward = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
        },
        (up) => {
          const parts: Buffer[] = [];
          up.on('data', (c: Buffer) => parts.push(c));
          up.on('end', async () => {
            const hold = proxy.delay(action);
            if (hold > 0) await new Promise((r) => setTimeout(r, hold));
            if (proxy.drop(action)) {
              req.socket.destroy();
              return;
            }
            res.writeHead(up.statusCode ?? 502, up.headers);
            res.end(Buffer.concat(parts));
          });
        },
      );
      forward.on('error', () => req.socket.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}
