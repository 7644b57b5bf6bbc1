// The one error kind of the DWARF reader: a malformed or unsupported piece of debug info, named by
// file and section. Every out-of-bounds offset, bad form or runaway loop ends up here, never as a
// RangeError from a DataView.
import { ProbeError } from "../errors.ts";

export class DwarfError extends ProbeError {}
