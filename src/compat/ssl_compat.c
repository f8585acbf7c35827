/*
 * ssl_compat.c - makes Debian 12's civetweb TLS work with OpenSSL 3.
 *
 * Debian's civetweb 1.15 dlopens "libssl.so" at run time and looks up
 * OpenSSL 1.1 names.  One of them, SSL_get_peer_certificate, is only a macro
 * in OpenSSL 3 (the function is SSL_get1_peer_certificate), so the lookup
 * yields NULL and civetweb crashes on the first HTTPS connection.
 *
 * This file builds a tiny shared library whose SONAME is "libssl.so" and
 * which depends on the real libssl.so.3.  kvs links it (rpath $ORIGIN), so
 * it is already loaded when civetweb calls dlopen("libssl.so"): the loader
 * hands civetweb this library, and dlsym() finds the one missing symbol here
 * and every other one in libssl.so.3 behind it.  Nothing else uses it.
 */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

X509 *SSL_get_peer_certificate(const SSL *ssl);

X509 *SSL_get_peer_certificate(const SSL *ssl)
{
	return SSL_get1_peer_certificate(ssl);
}
