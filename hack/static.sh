#!/usr/bin/env bash
# Builds membrane as one static executable (build-static/membrane), linked
# against libraries cut down to what the operator uses:
#   - OpenSSL, from Debian's source package, without what no TLS peer or
#     signature of the operator's uses (engines, the legacy provider, SSLv3,
#     DTLS, SRP, GOST, SM2/3/4, IDEA, Camellia, ARIA, SEED, Blowfish, CAST,
#     RC2/4/5, MD4, MDC2, Whirlpool, CMP, time stamps, compression) and built
#     for size: half of Debian's libcrypto.a, whose pages are most of the
#     executable's resident memory;
#   - libcurl, from the same, on that OpenSSL, with HTTP and HTTPS and
#     nothing else (no LDAP, SSH, RTMP, Kerberos, IDN, PSL, HTTP/2, brotli, ...);
#   - libarchive, from Debian's source package, with tar and gzip (zlib) only
#     (and nothing of xml2, lzma, zstd, bzip2, acl, nettle, OpenSSL);
#   - cJSON, from Debian's source package (libcjson-dev ships no .a);
#   - the static archives Debian's -dev packages ship for the rest: libyaml,
#     libwebsockets (with libcap and zlib).
# Sources come through apt in a private state directory (its own sources.list,
# lists and cache under the cache directory), so the system's apt configuration
# is untouched; apt verifies the Release signatures with Debian's archive
# keyring and the files' checksums. The built libraries are cached under
# ~/.cache/membrane/static/<package>-<Debian version>: a rerun is instant.
#   hack/static.sh            builds build-static/membrane, prints its path
#   MEMBRANE_STATIC_BUILD=DIR builds there instead
# glibc is linked statically too: name resolution uses glibc's built-in
# "files" and "dns" lookups (/etc/hosts, /etc/resolv.conf); the link warns that
# getaddrinfo needs glibc's NSS modules at run time, which only matters for
# other NSS sources (nsswitch.conf), which the operator does not use.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cache=${MEMBRANE_CACHE:-$HOME/.cache/membrane}/static
out=${MEMBRANE_STATIC_BUILD:-$repo/build-static}
jobs=2 # the machine's two cores are shared
mkdir -p "$cache"

# --- a private apt state: deb-src entries for bookworm, nothing of the system's
apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts"
cat > "$apt_dir/sources.list" <<'EOF'
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/parts"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
  # the cache is under root's home, which apt's unprivileged download user cannot enter
  -o "APT::Sandbox::User=root")
for tool in apt-get dpkg-source curl cc make cmake ninja pkg-config; do
  command -v "$tool" >/dev/null || { echo "static.sh: $tool is not installed (hack/setup.sh installs it)" >&2; exit 1; }
done
for a in libyaml.a libwebsockets.a libcap.a libz.a; do
  [ -f "/usr/lib/x86_64-linux-gnu/$a" ] || {
    echo "static.sh: /usr/lib/x86_64-linux-gnu/$a is missing (hack/setup.sh installs the -dev packages that ship it)" >&2
    exit 1
  }
done

# the lists are refreshed once a day at most
if [ -z "$(find "$apt_dir/lists" -maxdepth 1 -name '*_Sources*' -mmin -1440 2>/dev/null | head -1)" ]; then
  echo "static.sh: updating the private apt lists of Debian's source packages" >&2
  apt-get "${apt_opts[@]}" -qq update >&2
  rm -f "$apt_dir"/*.served
fi

# version NAME: the newest version of source package NAME the archive serves: the lists may name a newer
# one whose files the mirror does not have yet, so each is tried, newest first, by asking the mirror for the
# headers of its files (nothing is downloaded); remembered until the lists are next refreshed
version() {
  local v u uris served rc memo="$apt_dir/$1.served"
  [ -s "$memo" ] && { cat "$memo"; return 0; }
  for v in $(apt-cache "${apt_opts[@]}" showsrc "$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -rV); do
    uris=$(apt-get "${apt_opts[@]}" --print-uris -qq source "$1=$v" 2>/dev/null | sed -n "s/^'\([^']*\)'.*/\1/p")
    served=$([ -n "$uris" ] && echo yes || echo no)
    for u in $uris; do
      rc=0; curl -fsI -o /dev/null "$u" || rc=$?
      # 22: the mirror answered with an error (not there); anything else is no answer, which decides nothing
      [ "$rc" -eq 0 ] || [ "$rc" -eq 22 ] || { echo "static.sh: no answer from the mirror for $u (curl exit $rc)" >&2; exit 1; }
      [ "$rc" -eq 0 ] || { served=no; break; }
    done
    if [ "$served" = yes ]; then
      printf '%s' "$v" | tee "$memo"
      return 0
    fi
    echo "static.sh: the mirror does not serve the files of $1 $v that its lists name; trying an older version" >&2
  done
  echo "static.sh: the archive serves no version of source package $1 that apt's lists in $apt_dir name" >&2
  exit 1
}

# fetch NAME VERSION DIR: downloads the source package (apt checks its checksums
# against the signed lists) and unpacks it with Debian's patches applied; prints
# the source directory
fetch() {
  local name=$1 ver=$2 dir=$3
  (cd "$dir" && apt-get "${apt_opts[@]}" -qq source "$name=$ver" >&2)
  find "$dir" -mindepth 1 -maxdepth 1 -type d -name "$name-*" | head -1
}

curl_ver=$(version curl)
archive_ver=$(version libarchive)
cjson_ver=$(version cjson)
ssl_ver=$(version openssl)
yaml_ver=$(dpkg-query -W -f='${Version}' libyaml-dev)
lws_ver=$(dpkg-query -W -f='${Version}' libwebsockets-dev)

# Everything is compiled for size, each function and datum in its own section, so that the link
# keeps only what the operator reaches (-Wl,--gc-sections): the executable's pages are most of its
# resident memory. A change of these flags is a new flavour of every library's cache directory.
size_cflags="-Os -ffunction-sections -fdata-sections"
flavour=os-sections

# prefix NAME VERSION [TAG]: where build caches one library
prefix() { printf '%s' "$cache/$1-$2${3:+-$3}-$flavour"; }

# build NAME VERSION [TAG]: builds one library into $(prefix NAME VERSION TAG) unless there
build() {
  local name=$1 ver=$2 prefix work src
  prefix=$(prefix "$@")
  [ -f "$prefix/.done" ] && return 0
  rm -rf "$prefix"
  work=$(mktemp -d "$cache/.build-$name.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  echo "static.sh: building $name $ver" >&2
  src=$(fetch "$name" "$ver" "$work")
  case $name in
    openssl)
      (cd "$src" && ./Configure linux-x86_64 --prefix="$prefix" --libdir=lib --openssldir=/usr/lib/ssl \
        no-shared no-tests no-legacy no-engine no-dso no-module no-comp no-ssl3 no-weak-ssl-ciphers no-dtls \
        no-sctp no-ktls no-srp no-gost no-sm2 no-sm3 no-sm4 no-idea no-camellia no-aria no-seed no-bf no-cast \
        no-rc2 no-rc4 no-rc5 no-md4 no-mdc2 no-whirlpool no-siphash no-ocb no-cmp no-ts no-srtp no-dgram \
        no-uplink no-afalgeng no-padlockeng no-capieng no-devcryptoeng no-des no-dsa no-dh no-ec2m no-rfc3779 \
        no-ocsp no-cms no-ct no-blake2 no-scrypt no-siv no-cmac no-ripemd no-multiblock no-nextprotoneg \
        no-ui-console no-async no-autoload-config $size_cflags \
        && make -s -j"$jobs" build_libs && make -s install_dev) >&2
      ;;
    curl)
      # Debian's patches change no autotools input that would need autoreconf
      (cd "$src" && CFLAGS="$size_cflags" ./configure -q --prefix="$prefix" --disable-shared --enable-static \
        --with-openssl="$(prefix openssl "$ssl_ver")" --with-zlib --enable-threaded-resolver \
        --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs \
        --without-libpsl --without-brotli --without-zstd --without-nghttp2 --without-ngtcp2 \
        --without-nghttp3 --without-quiche --without-msh3 --without-libidn2 --without-librtmp \
        --without-libssh2 --without-libssh --without-wolfssh --without-gssapi --without-libgsasl \
        --without-hyper --disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet \
        --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp --disable-gopher \
        --disable-mqtt --disable-ftp --disable-file --disable-ntlm --disable-ntlm-wb \
        --disable-manual --disable-websockets --disable-dependency-tracking \
        && make -s -j"$jobs" -C lib && make -s -C lib install && make -s -C include install \
        && make -s install-pkgconfigDATA) >&2
      ;;
    libarchive)
      # with CMake: Debian's patches touch configure.ac, which autotools would want to regenerate
      cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=MinSizeRel "-DCMAKE_C_FLAGS=$size_cflags" \
        -DCMAKE_POSITION_INDEPENDENT_CODE=OFF \
        -DENABLE_ZLIB=ON -DENABLE_MBEDTLS=OFF -DENABLE_NETTLE=OFF -DENABLE_OPENSSL=OFF -DENABLE_LIBB2=OFF \
        -DENABLE_LZ4=OFF -DENABLE_LZO=OFF -DENABLE_LZMA=OFF -DENABLE_ZSTD=OFF -DENABLE_BZip2=OFF \
        -DENABLE_LIBXML2=OFF -DENABLE_EXPAT=OFF -DENABLE_PCREPOSIX=OFF -DENABLE_LibGCC=OFF -DENABLE_CNG=OFF \
        -DENABLE_TAR=OFF -DENABLE_CPIO=OFF -DENABLE_CAT=OFF -DENABLE_XATTR=OFF -DENABLE_ACL=OFF \
        -DENABLE_ICONV=OFF -DENABLE_TEST=OFF -DENABLE_WERROR=OFF >&2
      ninja -C "$work/build" -j"$jobs" archive_static >&2
      mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
      cp "$work/build/libarchive/libarchive.a" "$prefix/lib/"
      cp "$src/libarchive/archive.h" "$src/libarchive/archive_entry.h" "$prefix/include/"
      cat > "$prefix/lib/pkgconfig/libarchive.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: libarchive
Description: libarchive $ver, tar and gzip (zlib) only, static
Version: ${ver%%-*}
Cflags: -I\${includedir}
Libs: -L\${libdir} -larchive
Libs.private: -lz
PC
      ;;
    cjson)
      cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=MinSizeRel "-DCMAKE_C_FLAGS=$size_cflags" \
        -DCMAKE_INSTALL_PREFIX="$prefix" \
        -DCMAKE_INSTALL_LIBDIR=lib -DBUILD_SHARED_LIBS=OFF -DBUILD_SHARED_AND_STATIC_LIBS=OFF \
        -DENABLE_CJSON_TEST=OFF -DENABLE_CJSON_UTILS=OFF -DENABLE_TARGET_EXPORT=OFF >&2
      ninja -C "$work/build" -j"$jobs" install >&2
      ;;
  esac
  touch "$prefix/.done"
}

build openssl "$ssl_ver"
build curl "$curl_ver" "openssl-$ssl_ver" # on that OpenSSL: a new one builds it anew
build libarchive "$archive_ver"
build cjson "$cjson_ver"

# pkg-config finds our four first, Debian's .pc files (and their --static
# dependencies) for the rest
libdirs="$(prefix openssl "$ssl_ver")/lib;$(prefix curl "$curl_ver" "openssl-$ssl_ver")/lib"
libdirs+=";$(prefix libarchive "$archive_ver")/lib;$(prefix cjson "$cjson_ver")/lib"
pcpath=$(sed 's|;|/pkgconfig:|g; s|$|/pkgconfig|' <<<"$libdirs")
for pc in openssl libcurl libarchive libcjson; do
  PKG_CONFIG_PATH=$pcpath pkg-config --variable=libdir "$pc" | grep -qF "$cache/" || {
    echo "static.sh: pkg-config does not find the built $pc under $cache" >&2
    exit 1
  }
done
sources="curl $curl_ver, libarchive $archive_ver, cjson $cjson_ver, openssl $ssl_ver, libyaml $yaml_ver, libwebsockets $lws_ver"
PKG_CONFIG_PATH=$pcpath cmake -S "$repo" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=MinSizeRel \
  "-DCMAKE_C_FLAGS=$size_cflags" "-DCMAKE_EXE_LINKER_FLAGS=-Wl,--gc-sections" \
  -DMEMBRANE_STATIC=ON "-DMEMBRANE_STATIC_SOURCES=$sources" \
  "-DMEMBRANE_STATIC_LIBDIRS=$libdirs" >/dev/null
# linked anew each time: ninja does not see the libraries above change
rm -f "$out/membrane"
ninja -C "$out" -j"$jobs" membrane >&2
strip "$out/membrane"
# a static executable has no interpreter and no shared libraries
if readelf -lW "$out/membrane" | grep -q 'program interpreter' || readelf -dW "$out/membrane" | grep -q NEEDED; then
  echo "static.sh: $out/membrane is not statically linked: $(readelf -dW "$out/membrane" | grep NEEDED | tr -s ' ')" >&2
  exit 1
fi
echo "$out/membrane"
