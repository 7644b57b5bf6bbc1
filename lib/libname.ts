// Does a library file name answer to what the user typed? `libssl` means OpenSSL's libssl.so.3 or
// libssl.so.1.1, never LibreSSL's libssl.so.59; `libc` means libc.so.6, not libcap.so.2.

// Libraries whose name is shared by unrelated ABIs: only these sonames are the one users mean.
const KNOWN_SONAMES: Record<string, RegExp> = {
  libssl: /^libssl\.so\.(3|1\.1|1\.0\.\d+)$/,
  libcrypto: /^libcrypto\.so\.(3|1\.1|1\.0\.\d+)$/,
};

export function libraryNameMatches(query: string, fileName: string): boolean {
  if (query === fileName) return true;
  if (query.includes(".so")) {
    // `libssl.so.3` matches the file itself or a versioned file behind it (libssl.so.3.0.2).
    return fileName.startsWith(`${query}.`) && /^[\d.]+$/.test(fileName.slice(query.length + 1));
  }
  const known = KNOWN_SONAMES[query];
  if (known) return known.test(fileName);
  const esc = query.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${esc}(-[\\d.]+)?\\.so(\\.\\d+)*$`).test(fileName);
}

/** Whether a target argument names a library (not a path, not an executable on PATH). */
export function looksLikeLibrary(target: string): boolean {
  return !target.includes("/") && (target.startsWith("lib") || target.includes(".so"));
}
