import type { MotoServer } from './moto';

export default async function globalTeardown(): Promise<void> {
  const moto = (globalThis as { __moto?: MotoServer }).__moto;
  await moto?.stop();
}
