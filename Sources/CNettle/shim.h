// Nettle (GnuTLS's crypto library), for HMAC-SHA1 only: TOTP (RFC 6238) needs SHA-1, which
// libsodium does not have. Statically linked it adds ~46 KB to a CGI; OpenSSL's libcrypto.a
// adds ~4.3 MB for the same HMAC (measured with gcc -static on Debian 12).
#include <nettle/hmac.h>
