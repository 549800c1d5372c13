// A growable byte buffer for the MessagePack and BSON encoders: capacity grows
// geometrically (amortised linear cost even for 100+ MiB values) and BSON length
// prefixes can be patched in after the fact.
'use strict';

class Writer {
  constructor(capacity = 4096) {
    this.buf = Buffer.allocUnsafe(capacity);
    this.pos = 0;
  }

  ensure(n) {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    const next = Buffer.allocUnsafe(need + (need >> 1)); // grow by half: linear total copying
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v) { this.ensure(1); this.buf[this.pos++] = v & 0xff; }
  i8(v) { this.ensure(1); this.pos = this.buf.writeInt8(v, this.pos); }
  u16be(v) { this.ensure(2); this.pos = this.buf.writeUInt16BE(v, this.pos); }
  i16be(v) { this.ensure(2); this.pos = this.buf.writeInt16BE(v, this.pos); }
  u32be(v) { this.ensure(4); this.pos = this.buf.writeUInt32BE(v, this.pos); }
  i32be(v) { this.ensure(4); this.pos = this.buf.writeInt32BE(v, this.pos); }
  u64be(v) { this.ensure(8); this.pos = this.buf.writeBigUInt64BE(v, this.pos); }
  i64be(v) { this.ensure(8); this.pos = this.buf.writeBigInt64BE(v, this.pos); }
  f64be(v) { this.ensure(8); this.pos = this.buf.writeDoubleBE(v, this.pos); }
  i32le(v) { this.ensure(4); this.pos = this.buf.writeInt32LE(v, this.pos); }
  i64le(v) { this.ensure(8); this.pos = this.buf.writeBigInt64LE(v, this.pos); }
  f64le(v) { this.ensure(8); this.pos = this.buf.writeDoubleLE(v, this.pos); }

  /** Write `s` as UTF-8; `len` is its byte length (already computed by the caller). */
  string(s, len) {
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }

  bytes(b) {
    this.ensure(b.length);
    this.pos += b.copy(this.buf, this.pos);
  }

  /** Reserve 4 bytes for a little-endian int32 written later with patchI32le. */
  reserve32() {
    this.ensure(4);
    const at = this.pos;
    this.pos += 4;
    return at;
  }

  patchI32le(at, v) { this.buf.writeInt32LE(v, at); }

  finish() { return this.buf.subarray(0, this.pos); }
}

module.exports = { Writer };
