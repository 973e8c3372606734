#!/usr/bin/env bash
# The conventions the compiler does not check, checked here (called by scripts/test.sh, so by CI):
#   format   every C file as .clang-format says (Debian 12's clang-format-14)
#   layers   tools/kmsctl, tools/kmsd and examples include only the public headers (kms/*.h) and their own
#   symbols  every global symbol defined by the library starts with kms_ (nm on the internal
#            library, so hidden ones count too); libkms.so and libkms.a export only kms_
#   macros   no macro that hides control flow (return, goto, break, continue) outside
#            src/util/error.h, whose KMS_GUARD and KMS_ENSURE are the documented ones
#   chains   no `r = r != 0 ? r : f()` error chains (one call per line, `goto out`)
#   size     no file in src/ over 800 lines
#   usage: scripts/check-conventions.sh BUILD_DIR
# Prints one line per finding and "conventions: N problems"; exits 1 if there is any.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/check-conventions.sh BUILD_DIR (a configured and built tree)}
problems=0
report() {
    echo "conventions: $*"
    problems=$((problems + 1))
}

mapfile -t c_files < <(git ls-files -- '*.c' '*.h' 2>/dev/null || find src include tools tests examples -name '*.[ch]')

# format: one clang-format run over every file; it names each file that differs
fmt=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$fmt" ]; then
    report "format: clang-format-14 is not installed (apt-get install clang-format-14)"
elif [ ${#c_files[@]} -gt 0 ]; then
    while IFS= read -r f; do
        report "format: $f differs from .clang-format (fix: $fmt -i $f)"
    done < <("$fmt" --dry-run --Werror "${c_files[@]}" 2>&1 |
        sed -nE 's/^([^:]+):[0-9]+:[0-9]+: (error|warning): code should be clang-formatted.*/\1/p' |
        sort -u)
fi

# layers: a front end sees include/kms and nothing else of ours
for f in $(printf '%s\n' "${c_files[@]}" | grep -E '^(tools/kmsctl|tools/kmsd|examples)/'); do
    dir=$(dirname "$f")
    while IFS=: read -r line inc; do
        case "$inc" in
        kms/*) ;;
        *) [ -f "$dir/$inc" ] || report "layers: $f:$line includes \"$inc\", a private header (use kms/*.h)" ;;
        esac
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
        sed -E 's/^([0-9]+):[^"]*"([^"]+)".*/\1:\2/')
done

# symbols
internal="$build/libkms_internal.a"
if [ ! -f "$internal" ]; then
    report "symbols: $internal not found (build the tree first: scripts/setup.sh $build)"
else
    while read -r sym; do
        report "symbols: $sym is global in libkms but does not start with kms_ (make it static or rename it)"
    done < <(nm -g --defined-only "$internal" | awk 'NF == 3 && $2 ~ /[TDBRVW]/ {print $3}' |
        grep -v '^kms_' | grep -v '^_' | sort -u) # _*: the toolchain's (sanitizers)
    for lib in "$build/libkms.so" "$build/libkms.a"; do
        [ -f "$lib" ] || { report "symbols: $lib not found"; continue; }
        if [ "${lib##*.}" = so ]; then
            syms=$(nm -D --defined-only "$lib" | awk 'NF == 3 {print $3}')
        else
            syms=$(nm -g --defined-only "$lib" | awk 'NF == 3 {print $3}')
        fi
        for sym in $(printf '%s\n' "$syms" | grep -v '^kms_' | grep -v '^_' | sort -u); do
            report "symbols: $lib exports $sym"
        done
    done
fi

# macros: join continuation lines, then look at each #define's body
for f in $(printf '%s\n' "${c_files[@]}" | grep -E '^(src|include|tools|examples)/' | grep -v '^src/util/error\.h$'); do
    while IFS= read -r hit; do
        report "macros: $f: $hit (control flow belongs in the code, or in KMS_GUARD/KMS_ENSURE)"
    done < <(awk '
        { line = $0 }
        cont { buf = buf " " line } !cont { buf = line; start = NR }
        { cont = (line ~ /\\$/) }
        !cont && buf ~ /^[[:space:]]*#[[:space:]]*define/ &&
            buf ~ /(^|[^A-Za-z0-9_])(return|goto|break|continue)([^A-Za-z0-9_]|$)/ {
            split(buf, w, /[ \t(]+/); print "line " start " defines " w[2]
        }' "$f")
done

# chains
while IFS= read -r hit; do
    report "chains: $hit (write one call per line: if ((r = f()) != 0) goto out;)"
done < <(grep -rnE '\b(r|rc|ret|err|status) = \1( != 0)? \? \1 : [A-Za-z_][A-Za-z0-9_]*\(' src tools include examples 2>/dev/null)

# size
for f in $(printf '%s\n' "${c_files[@]}" | grep '^src/'); do
    n=$(wc -l <"$f")
    [ "$n" -le 800 ] || report "size: $f has $n lines (split it along its sections; at most 800)"
done

echo "conventions: $problems problems"
[ "$problems" -eq 0 ]
