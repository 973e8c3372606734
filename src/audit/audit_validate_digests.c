/* validate-logs, passes 2 and 3: every digest's signature, JSON and fields, and the digest
 * chain (audit.h "A digest"). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"
#include "audit/audit_validator.h"
#include "util/util.h"

static int cmp_digest(const void *a, const void *b)
{
    const digest *x = a, *y = b;
    return (x->number > y->number) - (x->number < y->number);
}

/* ---- Digests -------------------------------------------------------------------------------- */

const char *kms_validator_str_field(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

int64_t kms_validator_int_field(const json_t *o, const char *k)
{
    const json_t *j = json_object_get(o, k);
    return json_is_integer(j) ? (int64_t)json_integer_value(j) : -1;
}

static bool verify(validator *v, const char *json, size_t len, const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, v->key) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, (const uint8_t *)json, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* Reads g's .sig, hexes it and verifies it over the digest bytes. */
static void digest_signature(validator *v, digest *g, const char *path, const char *json,
                             size_t len)
{
    char *sig_path = kms_strdup_printf("%s.sig", path);
    char *sig = NULL;
    size_t sig_len = 0;
    if (sig_path == NULL) {
        v->oom = true;
        return;
    }
    int err = kms_validator_read_small(sig_path, SIG_MAX_BYTES, &sig, &sig_len);
    if (err == ENOMEM) {
        v->oom = true;
    } else if (err == EINVAL) {
        char file[NAME_MAX_LEN + 8];
        snprintf(file, sizeof file, "%s.sig", g->name);
        kms_validator_problem(v, &g->f, "unexpected", file, g->number, 0,
                              "%s is not a regular file, so %s has no signature", file, g->name);
    } else if (err != 0) {
        kms_validator_problem(v, &g->f, "missing", g->name, g->number, 0,
                              "the signature %s.sig of this digest %s", g->name,
                              err == ENOENT  ? "is missing"
                              : err == EFBIG ? "is too large to be a signature"
                                             : "cannot be read");
    } else {
        g->sig_hex = malloc(2 * sig_len + 1);
        if (g->sig_hex == NULL) {
            v->oom = true;
        } else {
            kms_audit_hex_encode((const uint8_t *)sig, sig_len, g->sig_hex);
        }
        g->sig_ok = verify(v, json, len, (const uint8_t *)sig, sig_len);
        if (!g->sig_ok) {
            kms_validator_problem(
                v, &g->f, "bad-signature", g->name, g->number, 0,
                "the signature %s.sig does not verify with the digest public key: the digest "
                "or its signature was changed, or it was signed by another key",
                g->name);
        }
    }
    free(sig);
    free(sig_path);
}

/* The fields of a parsed digest that do not depend on other files. */
static void digest_fields(validator *v, digest *g)
{
    const json_t *o = g->doc;
    const char *file = kms_validator_str_field(o, "digestFile");
    if (file == NULL || strcmp(file, g->name) != 0) {
        kms_validator_problem(v, &g->f, "out-of-order", g->name, g->number, 0,
                              "%s says it is %s: the file was renamed or copied", g->name,
                              file ? file : "(no digestFile)");
    }
    int64_t first = kms_validator_int_field(o, "firstSequence"),
            last = kms_validator_int_field(o, "lastSequence");
    if (last != g->number || first < 1 || first > last) {
        kms_validator_problem(v, &g->f, "out-of-order", g->name, g->number, 0,
                              "%s covers sequences %" PRId64 " to %" PRId64
                              ", which does not match its name (the last sequence it covers)",
                              g->name, first, last);
    }
    const char *fp = kms_validator_str_field(o, "digestPublicKeyFingerprint");
    if (fp == NULL || strcmp(fp, v->fingerprint) != 0) {
        kms_validator_problem(v, &g->f, "modified", g->name, g->number, 0,
                              "%s names the signing key %s, not the digest public key %s", g->name,
                              fp ? fp : "(none)", v->fingerprint);
    }
    const char *alg = kms_validator_str_field(o, "digestSignatureAlgorithm");
    if (alg == NULL || strcmp(alg, "SHA256withECDSA") != 0) {
        kms_validator_problem(v, &g->f, "modified", g->name, g->number, 0,
                              "%s has signature algorithm %s, expected SHA256withECDSA", g->name,
                              alg ? alg : "(none)");
    }
    if (!kms_audit_is_hash_hex(kms_validator_str_field(o, "lastRecordHash")) ||
        !json_is_array(json_object_get(o, "logFiles"))) {
        kms_validator_problem(v, &g->f, "malformed", g->name, g->number, 0,
                              "%s lacks a lastRecordHash or a logFiles list", g->name);
    }
    g->oldest = kms_audit_parse_time(kms_validator_str_field(o, "oldestEventTime"));
    g->newest = kms_audit_parse_time(kms_validator_str_field(o, "newestEventTime"));
    if (g->oldest < 0 || g->newest < 0) {
        g->oldest = kms_audit_parse_time(kms_validator_str_field(o, "digestStartTime"));
        g->newest = kms_audit_parse_time(kms_validator_str_field(o, "digestEndTime"));
    }
}

static void digest_read(validator *v, digest *g)
{
    char *path = kms_path_join(v->dir, g->name);
    char *json = NULL;
    size_t len = 0;
    if (path == NULL) {
        v->oom = true;
        return;
    }
    int err = kms_validator_read_small(path, DIGEST_MAX_BYTES, &json, &len);
    if (err == ENOMEM) {
        v->oom = true;
    } else if (err == EINVAL) {
        kms_validator_problem(v, &g->f, "unexpected", g->name, g->number, 0,
                              "%s is not a regular file", g->name);
    } else if (err != 0) {
        kms_validator_problem(v, &g->f, err == EFBIG ? "malformed" : "missing", g->name, g->number,
                              0, "%s %s", g->name,
                              err == EFBIG ? "is too large to be a digest" : "cannot be read");
    } else {
        g->readable = true;
        kms_audit_sha256_hex(json, len, g->hash);
        digest_signature(v, g, path, json, len);
        json_error_t jerr;
        g->doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(g->doc)) {
            json_decref(g->doc);
            g->doc = NULL;
            kms_validator_problem(v, &g->f, "malformed", g->name, g->number, 0,
                                  "%s is not a digest: not a JSON object (%s)", g->name, jerr.text);
        } else {
            digest_fields(v, g);
        }
    }
    free(json);
    free(path);
}

static int cmp_digest_name(const void *key, const void *elem)
{
    return strcmp(key, ((const digest *)elem)->name);
}

/* v->digs is in sequence order, which is name order (fixed-width numbers). */
digest *kms_validator_digest_by_name(validator *v, const char *name)
{
    return v->ndigs ? bsearch(name, v->digs, v->ndigs, sizeof *v->digs, cmp_digest_name) : NULL;
}

/* previousDigest* of g against the digest before it (prev, NULL for the first). */
static void digest_chain(validator *v, digest *g, digest *prev)
{
    const json_t *o = g->doc;
    const char *pfile = kms_validator_str_field(o, "previousDigestFile");
    if (prev == NULL) {
        if (pfile != NULL) {
            kms_validator_chain_problem(
                v, &g->f, "missing", pfile, -1, 0,
                "%s names %s as the previous digest, which is missing: digests were deleted "
                "from the start of the chain",
                g->name, pfile);
        } else if (!json_is_null(json_object_get(o, "previousDigestHashValue")) ||
                   !json_is_null(json_object_get(o, "previousDigestSignature"))) {
            kms_validator_chain_problem(
                v, &g->f, "modified", g->name, g->number, 0,
                "%s is the first digest but holds a previous digest hash or signature", g->name);
        }
        return;
    }
    if (pfile == NULL || strcmp(pfile, prev->name) != 0) {
        bool gone = pfile != NULL && kms_validator_digest_by_name(v, pfile) == NULL;
        kms_validator_chain_problem(
            v, &g->f, gone ? "missing" : "out-of-order", gone ? pfile : g->name,
            gone ? -1 : g->number, 0,
            gone ? "%s names %s as the previous digest, which is missing: a digest was "
                   "deleted from the chain (the one before is %s)"
                 : "%s names %s as the previous digest, but the digest before it is %s",
            g->name, pfile ? pfile : "no digest", prev->name);
        return;
    }
    const char *phash = kms_validator_str_field(o, "previousDigestHashValue");
    if (prev->readable && (phash == NULL || strcmp(phash, prev->hash) != 0)) {
        kms_validator_chain_problem(
            v, &prev->f, "modified", prev->name, prev->number, 0,
            "%s does not hash to the previousDigestHashValue that %s recorded: it was "
            "changed after %s was written",
            prev->name, g->name, g->name);
    }
    const char *psig = kms_validator_str_field(o, "previousDigestSignature");
    if (prev->sig_hex != NULL && (psig == NULL || strcmp(psig, prev->sig_hex) != 0)) {
        kms_validator_chain_problem(
            v, &prev->f, "modified", prev->name, prev->number, 0,
            "%s.sig differs from the previousDigestSignature that %s recorded", prev->name,
            g->name);
    }
    int64_t pl = kms_validator_int_field(prev->doc, "lastSequence"),
            first = kms_validator_int_field(o, "firstSequence");
    if (pl >= 0 && first >= 0 && first != pl + 1) {
        kms_validator_chain_problem(
            v, &g->f, first > pl + 1 ? "missing" : "out-of-order", g->name, g->number, 0,
            "%s starts at sequence %" PRId64 " but the previous digest %s ended at %" PRId64,
            g->name, first, prev->name, pl);
    }
}

static int cmp_segment_name(const void *a, const void *b)
{
    return strcmp((*(segment *const *)a)->name, (*(segment *const *)b)->name);
}

static int cmp_segment_key(const void *key, const void *elem)
{
    return strcmp(key, (*(segment *const *)elem)->name);
}

/* v->by_name: the segments in name order (v->segs is in record order). */
int kms_validator_index_segment_names(validator *v)
{
    v->by_name = calloc(v->nsegs ? v->nsegs : 1, sizeof *v->by_name);
    if (v->by_name == NULL) {
        v->oom = true;
        return -1;
    }
    for (size_t i = 0; i < v->nsegs; i++) {
        v->by_name[i] = &v->segs[i];
    }
    if (v->nsegs > 1) {
        qsort(v->by_name, v->nsegs, sizeof *v->by_name, cmp_segment_name);
    }
    return 0;
}

static segment *segment_by_name(validator *v, const char *name)
{
    segment **hit =
        v->nsegs ? bsearch(name, v->by_name, v->nsegs, sizeof *v->by_name, cmp_segment_key) : NULL;
    return hit ? *hit : NULL;
}

/* Notes which segments each digest lists. */
void kms_validator_digest_log_files(validator *v, size_t gi)
{
    digest *g = &v->digs[gi];
    const json_t *files = json_object_get(g->doc, "logFiles");
    for (size_t i = 0; i < json_array_size(files); i++) {
        const json_t *e = json_array_get(files, i);
        const char *name = kms_validator_str_field(e, "file");
        segment *s = name ? segment_by_name(v, name) : NULL;
        if (name == NULL) {
            kms_validator_problem(v, &g->f, "malformed", g->name, g->number, 0,
                                  "logFiles entry %zu of %s has no file", i + 1, g->name);
        } else if (s == NULL) {
            kms_validator_problem(
                v, &g->f, "missing", name, kms_validator_int_field(e, "firstSequence"), 0,
                "%s, which %s lists (records %" PRId64 " to %" PRId64 "), is missing", name,
                g->name, kms_validator_int_field(e, "firstSequence"),
                kms_validator_int_field(e, "lastSequence"));
        } else if (s->digest >= 0) {
            kms_validator_problem(v, &g->f, "modified", name, -1, 0,
                                  "%s is listed by both %s and %s", name, v->digs[s->digest].name,
                                  g->name);
        } else {
            s->digest = (long)gi;
            s->entry = i;
        }
    }
}

void kms_validator_check_digests(validator *v)
{
    if (v->ndigs > 1) {
        qsort(v->digs, v->ndigs, sizeof *v->digs, cmp_digest);
    }
    for (size_t i = 0; i < v->ndigs; i++) {
        digest_read(v, &v->digs[i]);
    }
    digest *prev = NULL;
    for (size_t i = 0; i < v->ndigs; i++) {
        digest *g = &v->digs[i];
        if (g->doc != NULL) {
            digest_chain(v, g, prev);
        }
        prev = g->readable ? g : prev;
    }
}
