/**
 * Counts WebSocket messages (RFC 6455 §5.2) on a byte stream without copying payloads:
 * only frame headers are read, payload bytes are skipped by arithmetic. A message is a
 * data frame (text, binary or continuation) with FIN set; control frames are counted apart.
 */
export class WsFrameCounter {
  messages = 0;
  controlFrames = 0;
  bytes = 0;
  /** Malformed header seen (reserved opcode); counting stops, bytes still relayed and counted. */
  broken = false;
  private skip = 0;
  private readonly hdr = Buffer.alloc(14);
  private hdrLen = 0;

  feed(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.broken) return;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - i);
        this.skip -= take;
        i += take;
        continue;
      }
      this.hdr[this.hdrLen++] = chunk[i++];
      const need = this.headerSize();
      if (need < 0 || this.hdrLen < need) continue;
      this.onHeader();
      this.hdrLen = 0;
    }
  }

  /** Bytes the current header needs, or -1 while its length is not yet known. */
  private headerSize(): number {
    if (this.hdrLen < 2) return -1;
    const b1 = this.hdr[1];
    const masked = b1 & 0x80 ? 4 : 0;
    const len7 = b1 & 0x7f;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + masked;
  }

  private onHeader(): void {
    const b0 = this.hdr[0];
    const b1 = this.hdr[1];
    const opcode = b0 & 0x0f;
    const len7 = b1 & 0x7f;
    let len: number;
    if (len7 === 126) len = this.hdr.readUInt16BE(2);
    else if (len7 === 127) len = Number(this.hdr.readBigUInt64BE(2));
    else len = len7;
    if ((opcode > 2 && opcode < 8) || opcode > 10) {
      this.broken = true;
      return;
    }
    if (opcode >= 8) this.controlFrames++;
    else if (b0 & 0x80) this.messages++;
    this.skip = len;
  }
}
