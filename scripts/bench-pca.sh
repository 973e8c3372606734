#!/usr/bin/env bash
# IssueCertificate per second through kmsctl (one process per certificate, as a shell script
# issuing certificates would run it: open the home, log in to the HSM, authorise, sign the
# certificate in the HSM, record it, write the audit record durably), against the same work
# done by openssl with its CA key in a file (`openssl x509 -req`, one process per certificate),
# in the same run. Also a kmsctl call that signs nothing (DescribeCertificateAuthority), the
# floor of the per-process cost. Then the same in one process (BUILD_DIR/tests/pca_burst:
# kms_call "acm-pca:IssueCertificate" through the gate on WORKERS threads, against X509_sign
# with the key loaded from its PEM file). Prints one JSON line; reports, asserts nothing.
#   bash scripts/bench-pca.sh [BUILD_DIR] [COUNT] [WORKERS]   (build, 100, 1)
#   KEY_ALGORITHM=EC_prime256v1|EC_secp384r1|RSA_2048 ... (default EC_prime256v1)
set -euo pipefail
build=${1:-build}
n=${2:-100}
workers=${3:-1}
alg=${KEY_ALGORITHM:-EC_prime256v1}
kmsctl=$(cd "$build" && pwd)/kmsctl
[ -x "$kmsctl" ] || { echo "no kmsctl in $build" >&2; exit 1; }
case $alg in
EC_prime256v1) sig=SHA256WITHECDSA oalg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
EC_secp384r1) sig=SHA384WITHECDSA oalg=(-newkey ec -pkeyopt ec_paramgen_curve:P-384) ;;
EC_secp521r1) sig=SHA512WITHECDSA oalg=(-newkey ec -pkeyopt ec_paramgen_curve:P-521) ;;
RSA_2048) sig=SHA256WITHRSA oalg=(-newkey rsa:2048) ;;
*) echo "KEY_ALGORITHM $alg: use EC_prime256v1, EC_secp384r1, EC_secp521r1 or RSA_2048" >&2; exit 1 ;;
esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-pca.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
home=$tmp/home
export KMS_HOME=$home
unset KMS_PROFILE KMS_ACCESS_KEY_ID KMS_SECRET_ACCESS_KEY KMS_SESSION_TOKEN || true
"$kmsctl" --home "$home" init >/dev/null
printf '{"KeyAlgorithm":"%s","SigningAlgorithm":"%s","Subject":{"CommonName":"Bench CA"}}' \
    "$alg" "$sig" >"$tmp/ca.json"
ca=$("$kmsctl" --home "$home" acm-pca create-certificate-authority --certificate-authority-type ROOT \
    --certificate-authority-configuration "file://$tmp/ca.json" --query CertificateAuthorityArn --output text)
# The baseline CA: the same key type in a file.
openssl req -x509 "${oalg[@]}" -nodes -keyout "$tmp/ca.key" -subj "/CN=Bench CA" -days 3650 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$tmp/ca.pem" 2>/dev/null
# One CSR (P-256), issued n times: the CSR's own key generation is not what is measured.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/leaf.key" \
    -subj /CN=bench.internal -addext subjectAltName=DNS:bench.internal -out "$tmp/leaf.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:bench.internal\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$tmp/leaf.ext"

export kmsctl home ca sig tmp
kms_issue() {
    "$kmsctl" --home "$home" acm-pca issue-certificate --certificate-authority-arn "$ca" \
        --csr "fileb://$tmp/leaf.csr" --signing-algorithm "$sig" --validity Value=30,Type=DAYS \
        --template-arn arn:aws:acm-pca:::template/EndEntityServerAuthCertificate/V1 >/dev/null
}
kms_describe() {
    "$kmsctl" --home "$home" acm-pca describe-certificate-authority --certificate-authority-arn "$ca" >/dev/null
}
openssl_issue() {
    openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
        -CAserial "$tmp/serial.$1" -days 30 -extfile "$tmp/leaf.ext" -out /dev/null 2>/dev/null
}
export -f kms_issue kms_describe openssl_issue
# rate FUNCTION: calls per second of n calls, workers at a time
rate() {
    local start end
    start=$(date +%s%N)
    seq "$n" | xargs -P "$workers" -I{} bash -c "$1 {}"
    end=$(date +%s%N)
    awk -v ns=$((end - start)) -v n="$n" 'BEGIN { printf "%.1f", n / (ns / 1e9) }'
}
kms_issue 0 # warm the caches (the HSM's objects, the page cache)
issue=$(rate kms_issue)
describe=$(rate kms_describe)
baseline=$(rate openssl_issue)
issued=$("$kmsctl" --home "$home" acm-pca create-certificate-authority-audit-report \
    --certificate-authority-arn "$ca" --audit-report-response-format CSV --query S3Key --output text)
count=$(($(wc -l <"$home/$issued") - 1))
in_process='{}'
if [ -x "$build/tests/pca_burst" ]; then
    in_process=$("$build/tests/pca_burst" "$home" "$ca" "$tmp/leaf.csr" "$sig" "$tmp/ca.key" \
        "$tmp/ca.pem" "$((n * 10))" "$workers")
fi
printf '{"key_algorithm": "%s", "count": %d, "workers": %d, "issued": %d, "kmsctl_issue_certificate_per_s": %s, "kmsctl_describe_ca_per_s": %s, "openssl_x509_req_per_s": %s, "ratio_to_openssl": %s, "in_process": %s}\n' \
    "$alg" "$n" "$workers" "$count" "$issue" "$describe" "$baseline" \
    "$(awk -v a="$issue" -v b="$baseline" 'BEGIN { printf "%.2f", a / b }')" "$in_process"
