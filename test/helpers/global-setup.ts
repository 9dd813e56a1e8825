import { startMoto } from './moto';

/** One moto_server for every integration and e2e test; its endpoint reaches the workers through the env. */
export default async function globalSetup(): Promise<void> {
  const moto = await startMoto();
  process.env.MOTO_ENDPOINT = moto.endpoint;
  process.env.MOTO_PID = String(moto.pid);
  (globalThis as { __moto?: typeof moto }).__moto = moto;
}
