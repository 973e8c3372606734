/* Envelope-encrypt a file with libkms: one fresh data key for the file, wrapped by a CMK of your
 * KMS home, the file's bytes encrypted outside the HSM in the AWS Encryption SDK message format.
 *
 * Build against an installed libkms:
 *     cc -o envelope_file envelope_file.c $(pkg-config --cflags --libs libkms)
 * Use:
 *     envelope_file encrypt alias/app secret.txt secret.txt.kms
 *     envelope_file decrypt secret.txt.kms secret.txt
 * The KMS home is $KMS_HOME (else ~/.kms), made by `kmsctl init`. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <kms/envelope.h>
#include <kms/kms.h>

static int fail(const char *what)
{
    fprintf(stderr, "envelope_file: %s: %s (%s)\n", what, kms_last_error_message(),
            kms_error_name(kms_last_error()));
    return 1;
}

int main(int argc, char **argv)
{
    bool encrypt = argc == 5 && strcmp(argv[1], "encrypt") == 0;
    bool decrypt = argc == 4 && strcmp(argv[1], "decrypt") == 0;
    if (!encrypt && !decrypt) {
        fprintf(stderr, "usage: envelope_file encrypt KEY_ID IN OUT\n"
                        "       envelope_file decrypt IN OUT\n");
        return 2;
    }
    kms_client_options copts = {0}; /* the default home and profile */
    kms_client *client = kms_client_open(&copts);
    if (client == NULL) {
        return fail("opening the KMS home");
    }
    /* Encrypt under the named key; decrypt with whichever key of this KMS wrapped the file. */
    const char *key_ids[] = {encrypt ? argv[2] : NULL};
    kms_keyring *keyring =
        encrypt ? kms_keyring_kms_new(client, key_ids, 1) : kms_keyring_kms_discovery_new(client);
    if (keyring == NULL) {
        kms_client_free(client);
        return fail("making the keyring");
    }
    /* The context is authenticated with the file and checked again on decrypt. */
    const kms_context_entry entries[] = {{"purpose", "example"}};
    const kms_encryption_context context = {entries, 1};
    kms_envelope_options options = {.keyring = keyring, .context = &context};
    int rc = encrypt ? kms_envelope_encrypt_file(&options, argv[3], argv[4])
                     : kms_envelope_decrypt_file(&options, argv[2], argv[3], NULL);
    int status = rc == 0 ? 0 : fail(encrypt ? "encrypting" : "decrypting");
    kms_keyring_free(keyring);
    kms_client_free(client);
    return status;
}
