import * as path from 'node:path';
import type { Progress } from '../../core/progress';
import type { ObjectStore, TransferProgress } from '../../core/ports';

/** Files below this move in a blink: a progress line for each manifest or metrics file would be noise. */
export const PROGRESS_MIN_BYTES = 8 * 1024 * 1024;

function tracker(progress: Progress, label: string, minBytes: number, inner?: TransferProgress) {
  let task: ReturnType<Progress['start']> | undefined;
  let last = 0;
  return {
    onProgress: (done: number, total: number): void => {
      inner?.(done, total);
      if (!task) {
        if (total < minBytes) return;
        task = progress.start(label, total);
      }
      task.advance(done - last);
      last = done;
    },
    end: (): void => task?.done(),
  };
}

/**
 * The store with a progress report on every large upload and download, so no command needs to ask for
 * one: a bar in a terminal, a line every 10 s or 10 % in a CI log, and a closing line with size and rate.
 */
export function withTransferProgress(
  store: ObjectStore,
  progress: Progress,
  minBytes = PROGRESS_MIN_BYTES,
): ObjectStore {
  const uploadFile: ObjectStore['uploadFile'] = async (key, file, options = {}) => {
    const t = tracker(progress, `upload ${path.basename(file)}`, minBytes, options.onProgress);
    const r = await store.uploadFile(key, file, { ...options, onProgress: t.onProgress });
    t.end();
    return r;
  };
  const downloadFile: ObjectStore['downloadFile'] = async (key, file, options = {}) => {
    const t = tracker(progress, `download ${path.posix.basename(key)}`, minBytes, options.onProgress);
    const r = await store.downloadFile(key, file, { ...options, onProgress: t.onProgress });
    t.end();
    return r;
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'uploadFile') return uploadFile;
      if (prop === 'downloadFile') return downloadFile;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
