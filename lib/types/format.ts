// Values of one probed function, formatted from what the BPF program recorded: the words named
// by the descriptor's slots and the bytes its captures copied. Everything that depends only on the
// prototype (names, types, which reader applies, JSON key text) is decided once, in the
// constructor; per event only the values are read and turned into text.
//
// Integers are read at their own width from the low bytes of a word (so an `int` -1 in a register
// holding 0x00000000ffffffff prints -1), 64-bit ones as two 32-bit halves (BigInt only past 2^53).
import type { CaptureRecord, FunctionLayout, SlotRecord, ValueKind, ValueLayout } from "./function-layout.ts";
import { base64, escapeC, hexdump, jsonString, jsonText } from "./bytes-text.ts";

/** Bytes a capture copied. For a C string, `bytes` excludes the NUL. */
export interface Captured {
  bytes: Uint8Array;
  /** The source goes on past `bytes` (no NUL within the limit, or a length over the limit). */
  truncated: boolean;
  /** The pointer could not be read (bytes is then empty). */
  fault: boolean;
}

/**
 * One event's recorded values. `words`: the u64 of slot i at byte 8*i, little-endian (a call event
 * needs the entry slots; a return event the return slots and Descriptor.saveAtEntry). `captures`:
 * indexed like Descriptor.captures (entry ones in a call event, return ones in a return event);
 * undefined when not copied, and the value is then shown as its pointer.
 */
export interface RawValues {
  words: DataView;
  captures: readonly (Captured | undefined)[];
}

export interface FormatOptions {
  /** Buffers ([LEN] pointers, Go []byte) as `hexdump -C` lines after the line instead of text. */
  hexdump?: boolean;
  /** Names of a C enum's values (from debug info), by tag. */
  enumNames?: (tag: string) => ReadonlyMap<number, string> | undefined;
}

type Read = (ev: RawValues) => string;

/** How one value is shown: text for people, the JSON value (with any extra keys after it). */
interface Shown {
  text: Read;
  json: Read;
  /** hexdump lines, for buffers when FormatOptions.hexdump is set. */
  block?: (ev: RawValues) => string[] | undefined;
}

interface Item {
  name: string;
  shown: Shown;
  /** `{"name":...,"type":...,"value":` */
  jsonHead: string;
}

const TWO32 = 4294967296;
const SAFE_HI = 0x200000; // hi * 2^32 + lo is exact below 2^53

function hex(lo: number, hi: number): string {
  return hi ? `0x${hi.toString(16)}${lo.toString(16).padStart(8, "0")}` : `0x${lo.toString(16)}`;
}

function u64(lo: number, hi: number): string {
  return hi < SAFE_HI ? String(hi * TWO32 + lo) : (BigInt(hi) * 4294967296n + BigInt(lo)).toString();
}

function i64(lo: number, hi: number): string {
  if (hi < 0x80000000) return u64(lo, hi);
  if (hi >= 0xffe00000) return String((hi - TWO32) * TWO32 + lo);
  return BigInt.asIntN(64, BigInt(hi) * 4294967296n + BigInt(lo)).toString();
}

/** As u64/i64, but a JSON string when the number is not exact as a double. */
function u64Json(lo: number, hi: number): string {
  return hi < SAFE_HI ? String(hi * TWO32 + lo) : `"${u64(lo, hi)}"`;
}

function i64Json(lo: number, hi: number): string {
  // Numbers only while they are safe integers: up to 2^53-1 and down to -(2^53-1).
  if (hi < SAFE_HI || hi > 0xffe00000 || (hi === 0xffe00000 && lo !== 0)) return i64(lo, hi);
  return `"${i64(lo, hi)}"`;
}

/** A word's value as a JS number (lengths): exact below 2^53, approximate above. */
function wordNumber(dv: DataView, slot: SlotRecord, o: number): number {
  switch (slot.size) {
    case 1:
      return slot.signed ? dv.getInt8(o) : dv.getUint8(o);
    case 2:
      return slot.signed ? dv.getInt16(o, true) : dv.getUint16(o, true);
    case 4:
      return slot.signed ? dv.getInt32(o, true) : dv.getUint32(o, true);
    default:
      return (slot.signed ? dv.getInt32(o + 4, true) : dv.getUint32(o + 4, true)) * TWO32 + dv.getUint32(o, true);
  }
}

function intReaders(o: number, size: number, signed: boolean): { text: Read; json: Read } {
  switch (size) {
    case 1: {
      const r: Read = signed ? (ev) => String(ev.words.getInt8(o)) : (ev) => String(ev.words.getUint8(o));
      return { text: r, json: r };
    }
    case 2: {
      const r: Read = signed ? (ev) => String(ev.words.getInt16(o, true)) : (ev) => String(ev.words.getUint16(o, true));
      return { text: r, json: r };
    }
    case 4: {
      const r: Read = signed ? (ev) => String(ev.words.getInt32(o, true)) : (ev) => String(ev.words.getUint32(o, true));
      return { text: r, json: r };
    }
    default:
      return signed
        ? { text: (ev) => i64(ev.words.getUint32(o, true), ev.words.getUint32(o + 4, true)), json: (ev) => i64Json(ev.words.getUint32(o, true), ev.words.getUint32(o + 4, true)) }
        : { text: (ev) => u64(ev.words.getUint32(o, true), ev.words.getUint32(o + 4, true)), json: (ev) => u64Json(ev.words.getUint32(o, true), ev.words.getUint32(o + 4, true)) };
  }
}

/** A buffer's copied bytes as a JSON object: text when the bytes are UTF-8, else base64. */
function bufferJson(c: Captured, len: number, extra = ""): string {
  const truncated = c.truncated || c.bytes.length < len;
  const t = jsonText(c.bytes, c.bytes.length, truncated);
  const body = t.lossy ? `"base64":"${base64(c.bytes)}"` : `"text":${t.json}`;
  return `{"len":${len}${extra},"truncated":${truncated},${body}}`;
}

function quoted(c: Captured, truncated: boolean): string {
  return `"${escapeC(c.bytes)}"${truncated ? "..." : ""}`;
}

export class ValueFormatter {
  private readonly callItems: Item[];
  private readonly returnItems: Item[];

  constructor(
    readonly layout: FunctionLayout,
    private readonly opts: FormatOptions = {},
  ) {
    const d = layout.descriptor;
    const nil = layout.abi === "go" ? "nil" : "NULL";
    const item = (v: ValueLayout, capture: number | undefined): Item => ({
      name: v.name,
      shown: this.shown(v, capture, nil),
      jsonHead: `{"name":${jsonString(v.name)},"type":${jsonString(v.typeText)},"value":`,
    });
    const atEntry = (v: ValueLayout) => (v.capture !== undefined && v.capture < d.entryCaptures ? v.capture : undefined);
    this.callItems = layout.args.map((v) => item(v, atEntry(v)));
    this.returnItems = [
      ...layout.results.map((v) => item(v, v.capture)),
      ...layout.args.filter((v) => v.capture !== undefined && v.capture >= d.entryCaptures).map((v) => item(v, v.capture)),
    ];
  }

  /** `fd=3, buf="hello", count=5`, then hexdump blocks on their own lines when asked for. */
  callText(ev: RawValues): string {
    return this.text(this.callItems, ev);
  }

  /** `[{"name":"fd","type":"int","value":3},...]` (ASCII only). */
  callJson(ev: RawValues): string {
    return this.json(this.callItems, ev);
  }

  /** Results (`ret=5`), then arguments copied at return (`buf="hello"` for `buf[ret]`). */
  returnText(ev: RawValues): string {
    return this.text(this.returnItems, ev);
  }

  /** The return for a sentence: a lone result as its bare value (`3`), else as returnText. */
  returnValueText(ev: RawValues): string {
    if (this.returnItems.length === 1 && this.layout.results.length === 1) return this.returnItems[0]!.shown.text(ev);
    return this.returnText(ev);
  }

  returnJson(ev: RawValues): string {
    return this.json(this.returnItems, ev);
  }

  /** The return's JSON items apart: the results, then the arguments copied at return. */
  returnJsonParts(ev: RawValues): { results: string[]; copies: string[] } {
    const n = this.layout.results.length;
    const item = (it: Item) => `${it.jsonHead}${it.shown.json(ev)}}`;
    return { results: this.returnItems.slice(0, n).map(item), copies: this.returnItems.slice(n).map(item) };
  }

  private text(items: Item[], ev: RawValues): string {
    let line = "";
    let blocks = "";
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      line += `${i ? ", " : ""}${it.name}=${it.shown.text(ev)}`;
      const b = it.shown.block?.(ev);
      if (b?.length) blocks += `\n  ${it.name}:\n    ${b.join("\n    ")}`;
    }
    return line + blocks;
  }

  private json(items: Item[], ev: RawValues): string {
    let s = "[";
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      s += `${i ? "," : ""}${it.jsonHead}${it.shown.json(ev)}}`;
    }
    return `${s}]`;
  }

  private shown(v: ValueLayout, capture: number | undefined, nil: string): Shown {
    const d = this.layout.descriptor;
    const k: ValueKind = v.value;
    const o = (i: number) => v.slots[i]! * 8;
    const ptr = (i: number) => {
      const at = o(i);
      return {
        zero: (ev: RawValues) => ev.words.getUint32(at, true) === 0 && ev.words.getUint32(at + 4, true) === 0,
        hex: (ev: RawValues) => hex(ev.words.getUint32(at, true), ev.words.getUint32(at + 4, true)),
      };
    };
    switch (k.kind) {
      case "int":
        return intReaders(o(0), k.size, k.signed);
      case "bool": {
        const at = o(0);
        const r: Read = (ev) => (ev.words.getUint8(at) ? "true" : "false");
        return { text: r, json: r };
      }
      case "enum": {
        const at = o(0);
        const names = this.opts.enumNames?.(k.tag);
        if (!names) {
          const r: Read = (ev) => String(ev.words.getInt32(at, true));
          return { text: r, json: r };
        }
        const jsonNames = new Map([...names].map(([n, s]) => [n, `,"enum":${jsonString(s)}`]));
        return {
          text: (ev) => {
            const n = ev.words.getInt32(at, true);
            return names.get(n) ?? String(n);
          },
          json: (ev) => {
            const n = ev.words.getInt32(at, true);
            return `${n}${jsonNames.get(n) ?? ""}`;
          },
        };
      }
      case "pointer": {
        const p = ptr(0);
        return { text: (ev) => (p.zero(ev) ? nil : p.hex(ev)), json: (ev) => (p.zero(ev) ? "null" : `"${p.hex(ev)}"`) };
      }
      case "cstring":
      case "buffer": {
        const p = ptr(0);
        const rec = capture === undefined ? undefined : d.captures[capture]!;
        if (!rec || capture === undefined) return { text: (ev) => (p.zero(ev) ? nil : p.hex(ev)), json: (ev) => (p.zero(ev) ? "null" : `null,"ptr":"${p.hex(ev)}"`) };
        if (k.kind === "cstring") {
          return {
            text: (ev) => {
              if (p.zero(ev)) return nil;
              const c = ev.captures[capture];
              if (!c) return p.hex(ev);
              return c.fault ? `<fault ${p.hex(ev)}>` : quoted(c, c.truncated);
            },
            json: (ev) => {
              if (p.zero(ev)) return "null";
              const c = ev.captures[capture];
              if (!c) return `null,"ptr":"${p.hex(ev)}"`;
              if (c.fault) return `null,"fault":"${p.hex(ev)}"`;
              const t = jsonText(c.bytes, c.bytes.length, c.truncated);
              return `${t.json}${c.truncated ? ',"truncated":true' : ""}${t.lossy ? `,"base64":"${base64(c.bytes)}"` : ""}`;
            },
          };
        }
        return this.bufferShown(p, capture, this.lengthOf(rec), nil);
      }
      case "gostring": {
        const p = ptr(0);
        const len = intReaders(o(1), 8, true);
        const lenAt = o(1);
        const rec = capture === undefined ? undefined : d.captures[capture];
        const n = (ev: RawValues) => ev.words.getInt32(lenAt + 4, true) * TWO32 + ev.words.getUint32(lenAt, true);
        return {
          text: (ev) => {
            if (n(ev) === 0) return '""';
            const c = rec && capture !== undefined ? ev.captures[capture] : undefined;
            if (!c) return `string(${p.hex(ev)}, len ${len.text(ev)})`;
            return c.fault ? `<fault ${p.hex(ev)}>` : quoted(c, c.truncated || c.bytes.length < n(ev));
          },
          json: (ev) => {
            if (n(ev) === 0) return '""';
            const c = rec && capture !== undefined ? ev.captures[capture] : undefined;
            if (!c) return `null,"ptr":"${p.hex(ev)}","len":${len.json(ev)}`;
            if (c.fault) return `null,"fault":"${p.hex(ev)}","len":${len.json(ev)}`;
            const truncated = c.truncated || c.bytes.length < n(ev);
            const t = jsonText(c.bytes, c.bytes.length, truncated);
            return `${t.json}${truncated ? `,"truncated":true,"len":${len.json(ev)}` : ""}${t.lossy ? `,"base64":"${base64(c.bytes)}"` : ""}`;
          },
        };
      }
      case "goslice": {
        const p = ptr(0);
        const len = intReaders(o(1), 8, true);
        const cap = intReaders(o(2), 8, true);
        if (k.bytes && capture !== undefined) {
          const lenAt = o(1);
          const b = this.bufferShown(p, capture, (ev) => Math.max(0, ev.words.getInt32(lenAt + 4, true) * TWO32 + ev.words.getUint32(lenAt, true)), nil, (ev) => `,"cap":${cap.json(ev)}`);
          return b;
        }
        return {
          text: (ev) => (p.zero(ev) ? nil : `${v.typeText}(${p.hex(ev)}, len ${len.text(ev)}, cap ${cap.text(ev)})`),
          json: (ev) => (p.zero(ev) ? "null" : `{"ptr":"${p.hex(ev)}","len":${len.json(ev)},"cap":${cap.json(ev)}}`),
        };
      }
      case "interface": {
        const tab = ptr(0);
        const data = ptr(1);
        const first = k.empty ? "type" : "itab";
        return {
          text: (ev) => (tab.zero(ev) && data.zero(ev) ? nil : `(${first} ${tab.hex(ev)}, data ${data.hex(ev)})`),
          json: (ev) => (tab.zero(ev) && data.zero(ev) ? "null" : `{"${first}":"${tab.hex(ev)}","data":"${data.hex(ev)}"}`),
        };
      }
      case "array": {
        const elems: Shown[] = v.slots.map((s) => {
          const e = k.elem;
          if (e.kind === "int") return intReaders(s * 8, e.size, e.signed);
          if (e.kind === "bool") {
            const r: Read = (ev) => (ev.words.getUint8(s * 8) ? "true" : "false");
            return { text: r, json: r };
          }
          const at = s * 8;
          const zero = (ev: RawValues) => ev.words.getUint32(at, true) === 0 && ev.words.getUint32(at + 4, true) === 0;
          const h = (ev: RawValues) => hex(ev.words.getUint32(at, true), ev.words.getUint32(at + 4, true));
          return { text: (ev) => (zero(ev) ? nil : h(ev)), json: (ev) => (zero(ev) ? "null" : `"${h(ev)}"`) };
        });
        return {
          text: (ev) => `[${elems.map((e) => e.text(ev)).join(" ")}]`,
          json: (ev) => `[${elems.map((e) => e.json(ev)).join(",")}]`,
        };
      }
      case "empty":
        return { text: () => "{}", json: () => "{}" };
      case "unreadable":
        return { text: () => "?", json: () => 'null,"unreadable":true' };
    }
  }

  /** The byte length a BYTES capture asked for, from the event's words. */
  private lengthOf(rec: CaptureRecord): (ev: RawValues) => number {
    if (rec.lenFrom === 1) {
      const n = rec.len * rec.scale;
      return () => n;
    }
    const slot = this.layout.descriptor.slots[rec.len]!;
    const at = rec.len * 8;
    const scale = rec.scale;
    if (rec.len2 < 0) return (ev) => Math.max(0, wordNumber(ev.words, slot, at)) * scale;
    const slot2 = this.layout.descriptor.slots[rec.len2]!;
    const at2 = rec.len2 * 8;
    return (ev) => Math.max(0, wordNumber(ev.words, slot, at)) * Math.max(0, wordNumber(ev.words, slot2, at2)) * scale;
  }

  private bufferShown(
    p: { zero: (ev: RawValues) => boolean; hex: (ev: RawValues) => string },
    capture: number,
    length: (ev: RawValues) => number,
    nil: string,
    extraJson?: (ev: RawValues) => string,
  ): Shown {
    const dump = this.opts.hexdump === true;
    return {
      text: (ev) => {
        if (p.zero(ev)) return nil;
        const c = ev.captures[capture];
        if (!c) return p.hex(ev);
        if (c.fault) return `<fault ${p.hex(ev)}>`;
        const len = length(ev);
        if (dump) return `<${len} bytes${c.truncated || c.bytes.length < len ? `, ${c.bytes.length} shown` : ""}>`;
        return quoted(c, c.truncated || c.bytes.length < len);
      },
      json: (ev) => {
        if (p.zero(ev)) return "null";
        const c = ev.captures[capture];
        if (!c) return `null,"ptr":"${p.hex(ev)}"`;
        if (c.fault) return `null,"fault":"${p.hex(ev)}"`;
        return bufferJson(c, length(ev), extraJson?.(ev));
      },
      block: dump
        ? (ev) => {
            const c = ev.captures[capture];
            return c && !c.fault && !p.zero(ev) ? hexdump(c.bytes) : undefined;
          }
        : undefined,
    };
  }
}
