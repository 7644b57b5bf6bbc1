// errno names and open(2) flags against the C library and the kernel's UAPI headers on this
// machine: a C program prints strerrorname_np() for every errno and the O_*/RESOLVE_* values of
// <asm/fcntl.h> and <linux/openat2.h>; host-path mapping against real /proc/self/mountinfo text.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { WORK, sh } from "../helpers.ts";
import { errnoName, namedErrnos } from "../../lib/errno-names.ts";
import { OPEN_FLAG_VALUES, RESOLVE_FLAG_VALUES, openFlagsText, openTakesMode, resolveFlagsText } from "../../lib/open-flags.ts";
import { mapThroughMounts, normalizePath, parseMountInfo } from "../../lib/proc/host-path.ts";

function cProgram(name: string, src: string): string {
  const c = join(WORK, `${name}.c`);
  writeFileSync(c, src);
  sh(`gcc -o ${join(WORK, name)} ${c}`);
  return sh(join(WORK, name));
}

describe("errno names", () => {
  test("every name equals glibc's strerrorname_np, and every number glibc names has one", () => {
    const text = cProgram("errnames", `#define _GNU_SOURCE\n#include <string.h>\n#include <stdio.h>\nint main(void){for(int i=1;i<600;i++){const char*n=strerrorname_np(i);if(n)printf("%d %s\\n",i,n);}return 0;}\n`);
    const glibc = new Map(text.trim().split("\n").map((l) => [Number(l.split(" ")[0]), l.split(" ")[1]!]));
    expect(glibc.size).toBeGreaterThan(120);
    for (const [n, name] of glibc) expect([n, errnoName(n)]).toEqual([n, name]);
    for (const n of namedErrnos()) expect([n, glibc.get(n)]).toEqual([n, errnoName(n)]);
    // Kernel-internal codes glibc has no name for, which syscall exits can still show.
    expect(errnoName(512)).toBe("ERESTARTSYS");
    expect(errnoName(0)).toBeUndefined();
    expect(errnoName(-2)).toBeUndefined();
    expect(errnoName(41)).toBeUndefined(); // unused number
  });
});

describe("open flags", () => {
  const values = cProgram(
    "openflags",
    `#include <stdio.h>\n#include <asm/fcntl.h>\n#include <linux/openat2.h>\n#define P(x) printf("%s %lu\\n", #x, (unsigned long)(x));\nint main(void){P(O_RDONLY)P(O_WRONLY)P(O_RDWR)P(O_CREAT)P(O_EXCL)P(O_NOCTTY)P(O_TRUNC)P(O_APPEND)P(O_NONBLOCK)P(O_DSYNC)P(FASYNC)P(O_DIRECT)P(O_LARGEFILE)P(O_DIRECTORY)P(O_NOFOLLOW)P(O_NOATIME)P(O_CLOEXEC)P(O_SYNC)P(O_PATH)P(O_TMPFILE)P(RESOLVE_NO_XDEV)P(RESOLVE_NO_MAGICLINKS)P(RESOLVE_NO_SYMLINKS)P(RESOLVE_BENEATH)P(RESOLVE_IN_ROOT)P(RESOLVE_CACHED)return 0;}\n`,
  );
  const kernel = new Map(values.trim().split("\n").map((l) => [l.split(" ")[0]!.replace("FASYNC", "O_ASYNC"), Number(l.split(" ")[1])]));

  test("every value equals the kernel's UAPI headers", () => {
    for (const [name, v] of Object.entries(OPEN_FLAG_VALUES)) expect([name, v]).toEqual([name, kernel.get(name)!]);
    for (const [name, v] of Object.entries(RESOLVE_FLAG_VALUES)) expect([name, v]).toEqual([name, kernel.get(name)!]);
    expect(Object.keys(OPEN_FLAG_VALUES).length + Object.keys(RESOLVE_FLAG_VALUES).length).toBe(kernel.size);
  });

  test("decoding: access mode first, then single bits, O_SYNC and O_TMPFILE as one, unknown bits in octal", () => {
    const k = (n: string) => kernel.get(n)!;
    expect(openFlagsText(k("O_RDONLY") | k("O_CLOEXEC"))).toBe("O_RDONLY|O_CLOEXEC");
    expect(openFlagsText(k("O_WRONLY") | k("O_CREAT") | k("O_TRUNC"))).toBe("O_WRONLY|O_CREAT|O_TRUNC");
    expect(openFlagsText(k("O_RDWR") | k("O_SYNC"))).toBe("O_RDWR|O_SYNC");
    expect(openFlagsText(k("O_RDWR") | k("O_DSYNC"))).toBe("O_RDWR|O_DSYNC");
    expect(openFlagsText(k("O_RDWR") | k("O_TMPFILE"))).toBe("O_RDWR|O_TMPFILE");
    expect(openFlagsText(k("O_RDONLY") | k("O_DIRECTORY"))).toBe("O_RDONLY|O_DIRECTORY");
    expect(openFlagsText(3)).toBe("O_ACCMODE");
    expect(openFlagsText(0o40000000)).toBe("O_RDONLY|0o40000000");
    expect(openFlagsText(1n << 40n)).toBe("O_RDONLY|0o20000000000000");
    expect(openTakesMode(k("O_CREAT"))).toBe(true);
    expect(openTakesMode(k("O_TMPFILE") | k("O_RDWR"))).toBe(true);
    expect(openTakesMode(k("O_DIRECTORY"))).toBe(false);
    expect(resolveFlagsText(k("RESOLVE_BENEATH") | k("RESOLVE_NO_SYMLINKS"))).toBe("RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH");
    expect(resolveFlagsText(0)).toBe("");
    expect(resolveFlagsText(0x100)).toBe("0x100");
  });
});

describe("host paths through mount tables", () => {
  // Lines as a docker container and its host write them (this machine's dockerd, overlay2).
  const container = parseMountInfo(
    [
      "1017 860 0:95 / / rw,relatime master:369 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/A:/var/lib/docker/overlay2/l/B",
      "1018 1017 0:97 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw",
      "1031 1017 254:1 /work/data /opens rw,relatime - ext4 /dev/vda1 rw",
      "1032 1017 254:1 /var/lib/docker/containers/abc/hosts /etc/hosts rw,relatime - ext4 /dev/vda1 rw",
      "1040 1017 0:99 / /tmp rw - tmpfs tmpfs rw",
      "1041 1017 254:1 /srv/with\\040space /sp rw - ext4 /dev/vda1 rw",
    ].join("\n"),
  );
  const host = parseMountInfo(
    [
      "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
      "30 22 0:95 / /var/lib/docker/overlay2/abc/merged rw,relatime shared:369 - overlay overlay rw",
      "31 22 254:1 /work /w rw,relatime shared:1 - ext4 /dev/vda1 rw",
      "garbage line",
    ].join("\n"),
  );

  test("parses the fields it needs and skips malformed lines", () => {
    expect(host.length).toBe(3);
    expect(container[5]).toEqual({ dev: "254:1", root: "/srv/with space", target: "/sp" });
  });

  test("the overlay root, a volume, a file bind mount; private mounts have no host name", () => {
    expect(mapThroughMounts("/etc/passwd", container, host)).toBe("/var/lib/docker/overlay2/abc/merged/etc/passwd");
    // /work/data is visible both at / and (deeper) at /w: the mount showing the deepest directory wins.
    expect(mapThroughMounts("/opens/x.txt", container, host)).toBe("/w/data/x.txt");
    expect(mapThroughMounts("/etc/hosts", container, host)).toBe("/var/lib/docker/containers/abc/hosts");
    expect(mapThroughMounts("/sp/a", container, host)).toBe("/srv/with space/a");
    expect(mapThroughMounts("/proc/1/status", container, host)).toBeUndefined();
    expect(mapThroughMounts("/tmp/x", container, host)).toBeUndefined();
    // A mount point is not a prefix of a longer name.
    expect(mapThroughMounts("/opensx/y", container, host)).toBe("/var/lib/docker/overlay2/abc/merged/opensx/y");
  });

  test("lexical normalisation", () => {
    expect(normalizePath("/a/./b/../c//d/")).toBe("/a/c/d");
    expect(normalizePath("/../..")).toBe("/");
    expect(normalizePath("rel/x")).toBe("/rel/x");
  });
});
