// TensorBoard event files with an implementation independent of medgpt's: protobufjs decodes and
// encodes tensorflow.Event, crc-32 (SheetJS) computes CRC-32C.
//   node tfevents.mjs decode FILE          one JSON line per record:
//                                          {"wall_time", "step", "file_version", "values": [{"tag", "simple_value"}]}
//                                          (fields left out when absent; step as a decimal string)
//   node tfevents.mjs encode OUT < JSONL   the same lines back to a file of TFRecords
// decode checks both masked CRCs of every record; a mismatch or truncation exits 1 naming the record.
import fs from "node:fs";
import protobuf from "protobufjs";
import CRC32C from "crc-32/crc32c.js";

// The subset of tensorflow/core/util/event.proto and framework/summary.proto that scalars use.
const { root } = protobuf.parse(`
  syntax = "proto3";
  package tensorflow;
  message Event {
    double wall_time = 1;
    int64 step = 2;
    oneof what { string file_version = 3; Summary summary = 5; }
  }
  message Summary {
    message Value {
      string tag = 1;
      oneof value { float simple_value = 2; }
    }
    repeated Value value = 1;
  }`, { keepCase: true });
const Event = root.lookupType("tensorflow.Event");

const mask = (crc) => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
const maskedCrc = (buf) => mask(CRC32C.buf(buf) >>> 0);

function decode(file) {
  const data = fs.readFileSync(file);
  const out = [];
  for (let pos = 0, rec = 0; pos < data.length; ++rec) {
    const die = (what) => {
      console.error(`${file}: record ${rec}: ${what}`);
      process.exit(1);
    };
    if (data.length - pos < 12) die("truncated header");
    const len = Number(data.readBigUInt64LE(pos));
    if (data.readUInt32LE(pos + 8) !== maskedCrc(data.subarray(pos, pos + 8))) die("length CRC mismatch");
    if (data.length - pos - 12 < len + 4) die("truncated record");
    const body = data.subarray(pos + 12, pos + 12 + len);
    if (data.readUInt32LE(pos + 12 + len) !== maskedCrc(body)) die("data CRC mismatch");
    const ev = Event.toObject(Event.decode(body), { longs: String, defaults: false, oneofs: false });
    if (ev.summary) ev.values = ev.summary.value || [], delete ev.summary;
    out.push(JSON.stringify(ev));
    pos += 12 + len + 4;
  }
  process.stdout.write(out.map((l) => l + "\n").join(""));
}

function encode(outFile) {
  const lines = fs.readFileSync(0, "utf8").split("\n").filter((l) => l.trim().length > 0);
  const parts = [];
  for (const line of lines) {
    const obj = JSON.parse(line);
    if (obj.values) obj.summary = { value: obj.values }, delete obj.values;
    const body = Buffer.from(Event.encode(Event.fromObject(obj)).finish());
    const head = Buffer.alloc(12);
    head.writeBigUInt64LE(BigInt(body.length), 0);
    head.writeUInt32LE(maskedCrc(head.subarray(0, 8)), 8);
    const tail = Buffer.alloc(4);
    tail.writeUInt32LE(maskedCrc(body), 0);
    parts.push(head, body, tail);
  }
  fs.writeFileSync(outFile, Buffer.concat(parts));
}

const [cmd, arg] = process.argv.slice(2);
if (cmd === "decode" && arg) decode(arg);
else if (cmd === "encode" && arg) encode(arg);
else {
  console.error("usage: node tfevents.mjs decode FILE | encode OUT < JSONL");
  process.exit(2);
}
