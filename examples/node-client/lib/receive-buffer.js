// The bytes received and not yet read as a frame. Chunks are kept as they arrived and merged only
// when a read needs bytes from more than one, so a 1 MiB answer arriving in 64 KiB chunks is
// copied once, however it was segmented (CLIENT-3).

export class ReceiveBuffer {
  #chunks = [];
  #head = 0; // bytes of #chunks[0] already read
  #length = 0;

  get length() {
    return this.#length;
  }

  push(chunk) {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** The first `n` bytes (n <= length) as one Buffer, without consuming them. */
  peek(n) {
    if (n > this.#length) throw new RangeError(`peek(${n}) with ${this.#length} bytes buffered`);
    const chunks = this.#chunks;
    if (n === 0) return Buffer.alloc(0);
    if (chunks[0].length - this.#head >= n) return chunks[0].subarray(this.#head, this.#head + n);
    const parts = [chunks[0].subarray(this.#head)];
    let got = parts[0].length;
    let used = 1;
    while (got < n) {
      parts.push(chunks[used]);
      got += chunks[used].length;
      used += 1;
    }
    chunks.splice(0, used, Buffer.concat(parts, got));
    this.#head = 0;
    return chunks[0].subarray(0, n);
  }

  /** Consume `n` bytes (n <= length). */
  skip(n) {
    this.#length -= n;
    let head = this.#head + n;
    const chunks = this.#chunks;
    while (chunks.length > 0 && head >= chunks[0].length) {
      head -= chunks[0].length;
      chunks.shift();
    }
    this.#head = chunks.length > 0 ? head : 0;
  }

  /** Drop everything; returns how many bytes were dropped. */
  clear() {
    const n = this.#length;
    this.#chunks = [];
    this.#head = 0;
    this.#length = 0;
    return n;
  }
}
