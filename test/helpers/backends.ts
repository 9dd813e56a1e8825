import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FsObjectStore } from '../../src/adapters/local/fs-store';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';
import type { ObjectStore } from '../../src/core/ports';
import { motoEndpoint, newBucket } from './aws';

/** A fresh, empty store, and the inputs that point a command at it. */
export interface StoreBackend {
  inputs: Record<string, string>;
  store: ObjectStore;
}

/**
 * The two stores commands run against, for `describe.each`: a local folder and S3 on the shared moto.
 * `label` names the temp folder and bucket so leftovers can be traced to their test file.
 */
export function storeBackends(label: string): [string, () => Promise<StoreBackend>][] {
  return [
    [
      'local store',
      async () => {
        const dir = mkdtempSync(path.join(tmpdir(), `mp-${label}-store-`));
        return { inputs: { backend: 'local', 'local-store': dir }, store: new FsObjectStore(dir) };
      },
    ],
    [
      'S3 on moto',
      async () => {
        const bucket = await newBucket(label);
        const endpoint = motoEndpoint();
        return {
          inputs: { backend: 'aws', bucket, 's3-endpoint': endpoint, region: 'us-east-1' },
          store: new S3ObjectStore({ bucket, region: 'us-east-1', endpoint }),
        };
      },
    ],
  ];
}
