/* The multi-keyring (framework/multi-keyring.md) and kms_keyring_free. */
#include <stdio.h>
#include <stdlib.h>

#include "envelope/esdk.h"
#include "util/error.h"

typedef struct multi {
    kms_keyring base;
    kms_keyring *generator; /* may be NULL */
    kms_keyring **children;
    size_t n;
} multi;

void kms_keyring_free(kms_keyring *keyring)
{
    if (keyring != NULL && keyring->vt != NULL && keyring->vt->destroy != NULL) {
        keyring->vt->destroy(keyring);
    }
}

/* A member's OnEncrypt (child 0: the generator), its error prefixed with which member failed;
 * the code is kept. */
static int member_encrypt(const kms_keyring *kr, size_t child, kms_materials *m)
{
    char who[32] = "generator";
    if (child > 0) {
        snprintf(who, sizeof who, "child %zu", child);
    }
    if (kr->vt->on_encrypt == NULL) {
        return kms_raise(KMS_ERR_VALIDATION, "multi-keyring %s: a %s keyring cannot encrypt", who,
                         kr->vt->name);
    }
    if (kr->vt->on_encrypt(kr, m) != 0) {
        return kms_raise(kms_last_error(), "multi-keyring %s (%s keyring): %s", who, kr->vt->name,
                         kms_last_error_message());
    }
    return 0;
}

/* multi-keyring.md OnEncrypt: the generator first, then every child wraps the same data key.
 * One deliberate difference: the spec makes a generator fail when the materials already hold a
 * data key. Re-encrypt hands the destination keyring exactly such materials, so here the
 * generator then only wraps the key like a child (keyring-interface.md: a keyring MUST NOT
 * generate when there is a key, which ours do not). */
static int multi_on_encrypt(const kms_keyring *kr, kms_materials *m)
{
    const multi *k = (const multi *)kr;
    if (k->generator != NULL) {
        KMS_GUARD(member_encrypt(k->generator, 0, m));
        KMS_ENSURE(m->has_data_key, KMS_ERR_INTERNAL,
                   "the multi-keyring's generator (%s) returned no data key",
                   k->generator->vt->name);
    }
    KMS_ENSURE(m->has_data_key, KMS_ERR_VALIDATION,
               "a multi-keyring without a generator cannot make a data key: give it a generator "
               "keyring");
    for (size_t i = 0; i < k->n; i++) {
        KMS_GUARD(member_encrypt(k->children[i], i + 1, m));
    }
    return 0;
}

/* multi-keyring.md OnDecrypt: the generator first, then the children in order, each on the
 * unmodified materials; the first that yields a data key wins. If none does, the error reported
 * is the last one that is not "no encrypted data key of this keyring" (NotFoundException), as it
 * says why a key that was there did not unwrap; NotFoundException only when no member had an
 * encrypted data key in the message. */
static int multi_on_decrypt(const kms_keyring *kr, kms_materials *m, const kms_edk_list *edks)
{
    const multi *k = (const multi *)kr;
    if (m->has_data_key) {
        return 0; /* "MUST immediately return the unmodified decryption materials" */
    }
    kms_error code = KMS_ERR_NOT_FOUND;
    char why[512] = "no member keyring could decrypt";
    size_t tried = 0;
    for (size_t i = 0; i < k->n + 1; i++) {
        const kms_keyring *member = i == 0 ? k->generator : k->children[i - 1];
        if (member == NULL || member->vt->on_decrypt == NULL) {
            continue;
        }
        tried++;
        if (member->vt->on_decrypt(member, m, edks) == 0) {
            return 0;
        }
        kms_error e = kms_last_error();
        if (e != KMS_ERR_NOT_FOUND || code == KMS_ERR_NOT_FOUND) {
            code = e;
            snprintf(why, sizeof why, "%s", kms_last_error_message());
        }
    }
    return kms_raise(code, "none of the %zu keyrings of the multi-keyring decrypted a data key; %s",
                     tried, why);
}

static void multi_destroy(kms_keyring *kr)
{
    multi *k = (multi *)kr;
    kms_keyring_free(k->generator);
    for (size_t i = 0; i < k->n; i++) {
        kms_keyring_free(k->children[i]);
    }
    free(k->children);
    free(k);
}

static const kms_keyring_vtable MULTI_VT = {
    .name = "multi",
    .on_encrypt = multi_on_encrypt,
    .on_decrypt = multi_on_decrypt,
    .destroy = multi_destroy,
};

/* Takes ownership of every keyring given, also on failure. */
kms_keyring *kms_keyring_multi_new(kms_keyring *generator, kms_keyring *const *children,
                                   size_t child_count)
{
    kms_error_clear();
    if (child_count > 0 && children == NULL) {
        kms_keyring_free(generator);
        kms_raise(KMS_ERR_VALIDATION, "the multi-keyring's list of %zu children is missing",
                  child_count);
        return NULL;
    }
    multi *k = calloc(1, sizeof *k);
    if (k != NULL && child_count > 0) {
        k->children = calloc(child_count, sizeof *k->children);
    }
    if (k == NULL || (child_count > 0 && k->children == NULL)) {
        kms_keyring_free(generator);
        for (size_t i = 0; i < child_count; i++) {
            kms_keyring_free(children[i]);
        }
        free(k);
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    /* From here on k owns every keyring: multi_destroy frees them on any failure. */
    k->base.vt = &MULTI_VT;
    k->generator = generator;
    for (size_t i = 0; i < child_count; i++) {
        k->children[i] = children[i];
    }
    k->n = child_count;
    /* multi-keyring.md Inputs: a generator or at least one child. */
    if (generator == NULL && child_count == 0) {
        kms_raise(KMS_ERR_VALIDATION,
                  "a multi-keyring needs a generator keyring or at least one child");
        goto fail;
    }
    for (size_t i = 0; i < child_count; i++) {
        if (children[i] == NULL) {
            kms_raise(KMS_ERR_VALIDATION, "child keyring %zu of the multi-keyring is NULL", i + 1);
            goto fail;
        }
    }
    return &k->base;
fail:
    multi_destroy(&k->base);
    return NULL;
}
