/* TlsServer and TlsSign: the TLS helper with its P-256 key in the HSM. */
#ifndef KMSBENCH_TLS_BENCH_H
#define KMSBENCH_TLS_BENCH_H

#include "kms/kms.h"

/* Makes a P-256 key in the home's HSM (a managed certificate's, "acm:kmsbench-tls-..."), a
 * certificate for it from a throwaway CA, an HMAC_256 CMK for session tickets, and serves TLS
 * on 127.0.0.1:port (handshake, then reading until the client closes; one connection at a
 * time, as `openssl s_server` does) until SIGTERM or SIGINT or `seconds` pass; then prints one JSON
 * object: handshakes, resumed ones, HSM signatures, ticket key derivations. */
int tls_bench_serve(kms_client *client, int port, double seconds);

/* TlsSign: ECDSA P-256 signatures per second on one thread, three ways: the key store's call
 * alone (the HSM's cost, which any design pays), EVP_DigestSign through the kms-hsm provider
 * (as libssl signs a handshake), and EVP_DigestSign with a key in memory (openssl's own). */
int tls_bench_sign(kms_client *client, double seconds);

#endif
