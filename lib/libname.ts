// Does a library file name answer to what the user typed? `libssl` means OpenSSL's libssl.so.3
// or libssl.so.1.1, never LibreSSL's libssl.so.59; `libc` means libc.so.6, not libcap.so.2;
// `libssl.so.3` means that soname or the versioned file behind it (libssl.so.3.0.7 in maps on
// distributions where the soname is a symlink).

// Libraries whose name is shared by unrelated ABIs: only these sonames are the one users mean.
const KNOWN_SONAMES: Record<string, RegExp> = {
  libssl: /^libssl\.so\.(3|1\.1|1\.0\.\d+[a-z]?)$/,
  libcrypto: /^libcrypto\.so\.(3|1\.1|1\.0\.\d+[a-z]?)$/,
};

/** `fileName` may be a path (as in /proc/PID/maps or ld.so.cache): its last component is compared. */
export function libraryNameMatches(query: string, fileName: string): boolean {
  const base = fileName.slice(fileName.lastIndexOf("/") + 1);
  if (query === base) return true;
  if (query.includes(".so")) {
    return base.startsWith(`${query}.`) && /^[\d.]+$/.test(base.slice(query.length + 1));
  }
  const known = KNOWN_SONAMES[query];
  if (known) return known.test(base);
  const esc = query.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${esc}(-[\\d.]+)?\\.so(\\.\\d+)*$`).test(base);
}

/** Whether a target argument names a library (not a path, not an executable on PATH). */
export function looksLikeLibrary(target: string): boolean {
  return !target.includes("/") && (target.startsWith("lib") || target.includes(".so"));
}
