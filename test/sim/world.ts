// The simulated world: one true time (ns, a Number: exact to 2^53, far beyond any run) and an
// event queue. Nothing here reads the wall clock. Events at the same instant run in the order
// they were scheduled. After an event that may have settled a promise (a client operation, a
// lease read), the loop lets every pending continuation run at that same instant before the
// next event, so "the read happened right after the lease check" means exactly that.

interface Event {
  at: number;
  seq: number;
  fn: () => void;
}

export class World {
  now = 0;
  #seq = 0;
  #heap: Event[] = [];
  #kicked = false;
  events = 0;

  schedule(at: number, fn: () => void): void {
    const e: Event = { at: Math.max(at, this.now), seq: this.#seq++, fn };
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, e)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  after(delayNs: number, fn: () => void): void {
    this.schedule(this.now + delayNs, fn);
  }

  /** A promise settled by an event `delayNs` from now. */
  sleep(delayNs: number): Promise<void> {
    return new Promise((resolve) => this.after(delayNs, () => { this.kick(); resolve(); }));
  }

  /** Says the current event settled (or started) promise work: drain continuations before the next. */
  kick(): void {
    this.#kicked = true;
  }

  #pop(): Event | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && less(h[r]!, h[l]!) ? r : l;
      if (less(last, h[c]!)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    return top;
  }

  /** Runs every event up to `untilNs` (true time). */
  async run(untilNs: number): Promise<void> {
    for (;;) {
      const top = this.#heap[0];
      if (top === undefined || top.at > untilNs) break;
      this.#pop();
      this.now = top.at;
      this.events++;
      top.fn();
      while (this.#kicked) {
        this.#kicked = false;
        await drain();
      }
    }
    this.now = Math.max(this.now, untilNs);
  }
}

function less(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Lets every queued promise continuation run (setImmediate runs after the microtask queue empties). */
function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
