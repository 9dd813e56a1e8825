/**
 * https for the bench's stores, as S3 is reached: over https the aws CLI (botocore) and our SDK client send
 * unsigned payloads (`payload_signing_enabled = false`), where over plain http botocore always hashes every
 * part to sign it. A self-signed certificate for 127.0.0.1, trusted by each client through its own setting
 * (AWS_CA_BUNDLE, rclone --ca-cert, NODE_EXTRA_CA_CERTS); moto gets a TLS front that forwards to it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import * as path from 'node:path';
import { createServer, type TLSSocket } from 'node:tls';

export interface BenchTls {
  key: string;
  cert: string;
  certFile: string;
}

export function selfSignedCert(dir: string): BenchTls {
  const keyFile = path.join(dir, 'tls-key.pem');
  const certFile = path.join(dir, 'tls-cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile };
}

/** An https endpoint on 127.0.0.1 forwarding every connection to a plain http one (moto). */
export async function tlsFront(
  target: string,
  tls: BenchTls,
): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<TLSSocket>();
  const server = createServer({ key: tls.key, cert: tls.cert }, (socket) => {
    sockets.add(socket);
    const upstream = connect(Number(port), hostname);
    socket.pipe(upstream).pipe(socket);
    const end = () => {
      socket.destroy();
      upstream.destroy();
      sockets.delete(socket);
    };
    socket.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    endpoint: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
