// The TLS stacks probe knows, and the functions it probes in each: reads, writes and handshakes,
// each with its code (enum tls_fn, bpf/ssl_read.h) that tells the programs where the buffer, the
// length and the result are.
import { TLS_FN } from "../layouts.ts";

export type TlsKind = "openssl" | "gnutls" | "go" | "nss";
export type TlsRole = "read" | "write" | "handshake";

export interface TlsFunctionDef {
  name: string;
  fn: number;
  role: TlsRole;
  /** Absent from some versions (SSL_read_ex before OpenSSL 1.1.1): probed when there. */
  optional?: boolean;
}

/**
 * OpenSSL 3: SSL_read and SSL_read_ex each call the internal read and neither calls the other;
 * SSL_write_ex goes through SSL_write_ex2, SSL_write does not: these four count every call once.
 * GnuTLS: gnutls_record_send tail-calls gnutls_record_send2 (not probed: it would count twice).
 * Go: Read and Write of *tls.Conn; handshakes are (*Conn).clientHandshake/serverHandshake, which
 * run only for a real handshake (HandshakeContext runs on every Read and Write).
 * NSS: its SSL sockets are NSPR descriptors read and written through NSPR's generic PR_Read,
 * PR_Recv, PR_Write and PR_Send (in libnspr4), which call the SSL layer's methods directly (the
 * SSL layer reaches the socket below through its methods, not through these): each call once.
 * They serve every other NSPR descriptor too (files, pipes, plain sockets). SSL_ForceHandshake
 * (in libssl3) runs only when the program asks for the handshake; otherwise it happens inside the
 * first read or write.
 */
export const TLS_FUNCTIONS: Record<TlsKind, readonly TlsFunctionDef[]> = {
  openssl: [
    { name: "SSL_read", fn: TLS_FN.SSL_READ, role: "read" },
    { name: "SSL_read_ex", fn: TLS_FN.SSL_READ_EX, role: "read", optional: true },
    { name: "SSL_write", fn: TLS_FN.SSL_WRITE, role: "write" },
    { name: "SSL_write_ex", fn: TLS_FN.SSL_WRITE_EX, role: "write", optional: true },
    { name: "SSL_do_handshake", fn: TLS_FN.SSL_HANDSHAKE, role: "handshake", optional: true },
  ],
  gnutls: [
    { name: "gnutls_record_recv", fn: TLS_FN.GNUTLS_RECV, role: "read" },
    { name: "gnutls_record_send", fn: TLS_FN.GNUTLS_SEND, role: "write" },
    { name: "gnutls_handshake", fn: TLS_FN.GNUTLS_HANDSHAKE, role: "handshake", optional: true },
  ],
  go: [
    { name: "crypto/tls.(*Conn).Read", fn: TLS_FN.GO_READ, role: "read" },
    { name: "crypto/tls.(*Conn).Write", fn: TLS_FN.GO_WRITE, role: "write" },
    { name: "crypto/tls.(*Conn).clientHandshake", fn: TLS_FN.GO_CLIENT_HANDSHAKE, role: "handshake", optional: true },
    { name: "crypto/tls.(*Conn).serverHandshake", fn: TLS_FN.GO_SERVER_HANDSHAKE, role: "handshake", optional: true },
  ],
  nss: [
    { name: "PR_Read", fn: TLS_FN.NSS_READ, role: "read" },
    { name: "PR_Recv", fn: TLS_FN.NSS_RECV, role: "read", optional: true },
    { name: "PR_Write", fn: TLS_FN.NSS_WRITE, role: "write" },
    { name: "PR_Send", fn: TLS_FN.NSS_SEND, role: "write", optional: true },
    { name: "SSL_ForceHandshake", fn: TLS_FN.NSS_HANDSHAKE, role: "handshake", optional: true },
  ],
};

/** NSS's SSL library is known by this function (it makes an NSPR descriptor an SSL socket); not probed. */
export const NSS_SSL_MARKER = "SSL_ImportFD";

/** The stack's name when its version is unknown. */
export const STACK_NAME: Record<TlsKind, string> = { openssl: "OpenSSL", gnutls: "GnuTLS", go: "Go crypto/tls", nss: "NSS" };

/** The function a code stands for. */
export function functionOfCode(fn: number): TlsFunctionDef | undefined {
  for (const defs of Object.values(TLS_FUNCTIONS)) for (const d of defs) if (d.fn === fn) return d;
  return undefined;
}

/** What users and messages call what probe looks for, per stack. */
export function lookedFor(): string {
  return "OpenSSL/BoringSSL (SSL_read, SSL_write), GnuTLS (gnutls_record_recv, gnutls_record_send), Go crypto/tls ((*Conn).Read, (*Conn).Write), NSS (libssl3's SSL_ImportFD with NSPR's PR_Read, PR_Write)";
}
