// Linux errno numbers by name (x86-64 and every architecture sharing asm-generic/errno*.h), for
// printing a syscall's -errno the way people read it: ENOENT, not 2.

const NAMES: readonly string[] = [
  "", "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO", "ENXIO", "E2BIG", "ENOEXEC", "EBADF", "ECHILD",
  "EAGAIN", "ENOMEM", "EACCES", "EFAULT", "ENOTBLK", "EBUSY", "EEXIST", "EXDEV", "ENODEV", "ENOTDIR",
  "EISDIR", "EINVAL", "ENFILE", "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG", "ENOSPC", "ESPIPE", "EROFS",
  "EMLINK", "EPIPE", "EDOM", "ERANGE", "EDEADLK", "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY", "ELOOP",
  "", "ENOMSG", "EIDRM", "ECHRNG", "EL2NSYNC", "EL3HLT", "EL3RST", "ELNRNG", "EUNATCH", "ENOCSI",
  "EL2HLT", "EBADE", "EBADR", "EXFULL", "ENOANO", "EBADRQC", "EBADSLT", "", "EBFONT", "ENOSTR",
  "ENODATA", "ETIME", "ENOSR", "ENONET", "ENOPKG", "EREMOTE", "ENOLINK", "EADV", "ESRMNT", "ECOMM",
  "EPROTO", "EMULTIHOP", "EDOTDOT", "EBADMSG", "EOVERFLOW", "ENOTUNIQ", "EBADFD", "EREMCHG", "ELIBACC", "ELIBBAD",
  "ELIBSCN", "ELIBMAX", "ELIBEXEC", "EILSEQ", "ERESTART", "ESTRPIPE", "EUSERS", "ENOTSOCK", "EDESTADDRREQ", "EMSGSIZE",
  "EPROTOTYPE", "ENOPROTOOPT", "EPROTONOSUPPORT", "ESOCKTNOSUPPORT", "EOPNOTSUPP", "EPFNOSUPPORT", "EAFNOSUPPORT", "EADDRINUSE", "EADDRNOTAVAIL", "ENETDOWN",
  "ENETUNREACH", "ENETRESET", "ECONNABORTED", "ECONNRESET", "ENOBUFS", "EISCONN", "ENOTCONN", "ESHUTDOWN", "ETOOMANYREFS", "ETIMEDOUT",
  "ECONNREFUSED", "EHOSTDOWN", "EHOSTUNREACH", "EALREADY", "EINPROGRESS", "ESTALE", "EUCLEAN", "ENOTNAM", "ENAVAIL", "EISNAM",
  "EREMOTEIO", "EDQUOT", "ENOMEDIUM", "EMEDIUMTYPE", "ECANCELED", "ENOKEY", "EKEYEXPIRED", "EKEYREVOKED", "EKEYREJECTED", "EOWNERDEAD",
  "ENOTRECOVERABLE", "ERFKILL", "EHWPOISON",
];

/** The kernel's own codes (include/linux/errno.h): never meant for user space, but syscall tracepoints see some. */
const KERNEL_INTERNAL: ReadonlyMap<number, string> = new Map([
  [512, "ERESTARTSYS"], [513, "ERESTARTNOINTR"], [514, "ERESTARTNOHAND"], [515, "ENOIOCTLCMD"],
  [516, "ERESTART_RESTARTBLOCK"], [517, "EPROBE_DEFER"], [518, "EOPENSTALE"], [519, "ENOPARAM"],
  [521, "EBADHANDLE"], [522, "ENOTSYNC"], [523, "EBADCOOKIE"], [524, "ENOTSUPP"], [525, "ETOOSMALL"],
  [526, "ESERVERFAULT"], [527, "EBADTYPE"], [528, "EJUKEBOX"], [529, "EIOCBQUEUED"], [530, "ERECALLCONFLICT"],
  [531, "ENOGRACE"],
]);

/** `ENOENT` for 2; undefined for a number with no name. */
export function errnoName(errno: number): string | undefined {
  if (errno > 0 && errno < NAMES.length) return NAMES[errno] || undefined;
  return KERNEL_INTERNAL.get(errno);
}

/** The numbers with names in the common table (1..133), for tests. */
export function namedErrnos(): number[] {
  return NAMES.flatMap((n, i) => (n ? [i] : []));
}
