// DWARF numbers used by the reader (DWARF 5 spec, section 7, plus the GNU and Go extensions that
// gcc and the Go linker emit). Only what the reader looks at is named.

export const TAG = {
  array_type: 0x01,
  enumeration_type: 0x04,
  formal_parameter: 0x05,
  lexical_block: 0x0b,
  member: 0x0d,
  pointer_type: 0x0f,
  reference_type: 0x10,
  compile_unit: 0x11,
  structure_type: 0x13,
  subroutine_type: 0x15,
  typedef: 0x16,
  union_type: 0x17,
  unspecified_parameters: 0x18,
  variant: 0x19,
  inlined_subroutine: 0x1d,
  ptr_to_member_type: 0x1f,
  subrange_type: 0x21,
  base_type: 0x24,
  const_type: 0x26,
  enumerator: 0x28,
  subprogram: 0x2e,
  variable: 0x34,
  volatile_type: 0x35,
  restrict_type: 0x37,
  namespace: 0x39,
  unspecified_type: 0x3b,
  partial_unit: 0x3c,
  rvalue_reference_type: 0x42,
  atomic_type: 0x47,
  skeleton_unit: 0x4a,
  class_type: 0x02,
} as const;

export const AT = {
  sibling: 0x01,
  location: 0x02,
  name: 0x03,
  byte_size: 0x0b,
  bit_offset: 0x0c,
  bit_size: 0x0d,
  stmt_list: 0x10,
  low_pc: 0x11,
  high_pc: 0x12,
  language: 0x13,
  comp_dir: 0x1b,
  const_value: 0x1c,
  inline: 0x20,
  producer: 0x25,
  prototyped: 0x27,
  lower_bound: 0x22,
  upper_bound: 0x2f,
  abstract_origin: 0x31,
  count: 0x37,
  data_member_location: 0x38,
  decl_file: 0x3a,
  decl_line: 0x3b,
  declaration: 0x3c,
  encoding: 0x3e,
  external: 0x3f,
  frame_base: 0x40,
  specification: 0x47,
  type: 0x49,
  variable_parameter: 0x4b,
  artificial: 0x34,
  ranges: 0x55,
  entry_pc: 0x52,
  data_bit_offset: 0x6b,
  linkage_name: 0x6e,
  str_offsets_base: 0x72,
  addr_base: 0x73,
  rnglists_base: 0x74,
  loclists_base: 0x8c,
  MIPS_linkage_name: 0x2007,
  GNU_addr_base: 0x2133,
  GNU_ranges_base: 0x2132,
  go_kind: 0x2900,
  go_key: 0x2901,
  go_elem: 0x2902,
  go_embedded_field: 0x2903,
} as const;

export const FORM = {
  addr: 0x01,
  block2: 0x03,
  block4: 0x04,
  data2: 0x05,
  data4: 0x06,
  data8: 0x07,
  string: 0x08,
  block: 0x09,
  block1: 0x0a,
  data1: 0x0b,
  flag: 0x0c,
  sdata: 0x0d,
  strp: 0x0e,
  udata: 0x0f,
  ref_addr: 0x10,
  ref1: 0x11,
  ref2: 0x12,
  ref4: 0x13,
  ref8: 0x14,
  ref_udata: 0x15,
  indirect: 0x16,
  sec_offset: 0x17,
  exprloc: 0x18,
  flag_present: 0x19,
  strx: 0x1a,
  addrx: 0x1b,
  ref_sup4: 0x1c,
  strp_sup: 0x1d,
  data16: 0x1e,
  line_strp: 0x1f,
  ref_sig8: 0x20,
  implicit_const: 0x21,
  loclistx: 0x22,
  rnglistx: 0x23,
  ref_sup8: 0x24,
  strx1: 0x25,
  strx2: 0x26,
  strx3: 0x27,
  strx4: 0x28,
  addrx1: 0x29,
  addrx2: 0x2a,
  addrx3: 0x2b,
  addrx4: 0x2c,
  GNU_addr_index: 0x1f01,
  GNU_str_index: 0x1f02,
  GNU_ref_alt: 0x1f20,
  GNU_strp_alt: 0x1f21,
} as const;

export const UT = { compile: 1, type: 2, partial: 3, skeleton: 4, split_compile: 5, split_type: 6 } as const;

export const ATE = {
  address: 0x1,
  boolean: 0x2,
  complex_float: 0x3,
  float: 0x4,
  signed: 0x5,
  signed_char: 0x6,
  unsigned: 0x7,
  unsigned_char: 0x8,
  imaginary_float: 0x9,
  packed_decimal: 0xa,
  numeric_string: 0xb,
  edited: 0xc,
  signed_fixed: 0xd,
  unsigned_fixed: 0xe,
  decimal_float: 0xf,
  UTF: 0x10,
} as const;

export const OP = {
  addr: 0x03,
  deref: 0x06,
  const1u: 0x08,
  const1s: 0x09,
  const2u: 0x0a,
  const2s: 0x0b,
  const4u: 0x0c,
  const4s: 0x0d,
  const8u: 0x0e,
  const8s: 0x0f,
  constu: 0x10,
  consts: 0x11,
  plus_uconst: 0x23,
  lit0: 0x30,
  lit31: 0x4f,
  reg0: 0x50,
  reg31: 0x6f,
  breg0: 0x70,
  breg31: 0x8f,
  regx: 0x90,
  fbreg: 0x91,
  bregx: 0x92,
  piece: 0x93,
  call_frame_cfa: 0x9c,
  implicit_value: 0x9e,
  stack_value: 0x9f,
  implicit_pointer: 0xa0,
  addrx: 0xa1,
  constx: 0xa2,
  entry_value: 0xa3,
  GNU_implicit_pointer: 0xf2,
  GNU_entry_value: 0xf3,
  GNU_parameter_ref: 0xfa,
} as const;

/** DW_LANG_* to the language names the API reports. */
export function languageName(code: number | undefined): string {
  switch (code) {
    case 0x01: case 0x02: case 0x0c: case 0x1d: case 0x2c:
      return "c";
    case 0x04: case 0x19: case 0x1a: case 0x21: case 0x2b:
      return "c++";
    case 0x16:
      return "go";
    case 0x1c:
      return "rust";
    case 0x8001:
      return "asm";
    case undefined:
      return "unknown";
    default:
      return "other";
  }
}

/** x86-64 DWARF register numbers (System V psABI, figure 3.36) to their names. */
const X86_64_REGS = [
  "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
  "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip",
  ...Array.from({ length: 16 }, (_, i) => `xmm${i}`),
  ...Array.from({ length: 8 }, (_, i) => `st${i}`),
  ...Array.from({ length: 8 }, (_, i) => `mm${i}`),
  "rflags", "es", "cs", "ss", "ds", "fs", "gs", "", "", "fs.base", "gs.base",
];

export function registerName(reg: number): string {
  return X86_64_REGS[reg] || `reg${reg}`;
}
