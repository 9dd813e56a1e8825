/**
 * Which bytes of a file being written out of order are there yet (pure: the download adapter reports what
 * it wrote, a reader waits here for the bytes it needs). Once closed, a wait for bytes that never came
 * rejects, so no reader hangs on a download that ended or failed.
 */
export class ArrivingBytes {
  /** Disjoint, sorted [start, end) ranges written so far. */
  private ranges: [number, number][] = [];
  private waiters: { start: number; end: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private closed: Error | undefined;

  /** Bytes [start, end) are written. */
  add(start: number, end: number): void {
    if (end <= start) return;
    const merged: [number, number][] = [];
    let s = start;
    let e = end;
    for (const [a, b] of this.ranges) {
      if (b < s || a > e) merged.push([a, b]);
      else {
        s = Math.min(s, a);
        e = Math.max(e, b);
      }
    }
    merged.push([s, e]);
    merged.sort((x, y) => x[0] - y[0]);
    this.ranges = merged;
    this.waiters = this.waiters.filter((w) => {
      if (!this.has(w.start, w.end)) return true;
      w.resolve();
      return false;
    });
  }

  /** True when every byte of [start, end) is written. */
  has(start: number, end: number): boolean {
    if (end <= start) return true;
    return this.ranges.some(([a, b]) => a <= start && end <= b);
  }

  /** Resolves once [start, end) is written; rejects when the file is closed without them. */
  ready(start: number, end: number): Promise<void> {
    if (this.has(start, end)) return Promise.resolve();
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => this.waiters.push({ start, end, resolve, reject }));
  }

  /** No more bytes will come: every wait still open rejects (with `reason`, if the writer failed). */
  close(reason?: Error): void {
    this.closed ??= reason ?? new Error('the download ended before these bytes arrived');
    for (const w of this.waiters.splice(0)) w.reject(this.closed);
  }
}
