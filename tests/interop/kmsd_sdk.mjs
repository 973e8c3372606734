#!/usr/bin/env node
// The AWS SDK for JavaScript v3 (@aws-sdk/client-kms) and the AWS Encryption SDK for JavaScript
// (@aws-crypto/client-node, KMS keyring) against kmsd: the other side of
// tests/integration/test_kmsd_sdk.sh. Nothing here is ours but the endpoint and the CA bundle.
//
//   node kmsd_sdk.mjs kms-suite
//       Runs CreateKey, Encrypt, Decrypt, GenerateDataKey, Sign/Verify (ECC_NIST_P256),
//       CreateAlias/ListAliases, ScheduleKeyDeletion and the refusals a client must see, and
//       prints one line per check ("ok NAME" or "FAIL NAME: why"). Exit 1 if any failed.
//   node kmsd_sdk.mjs esdk-encrypt --key-id ARN -i IN -o OUT [--encryption-context k=v ...]
//   node kmsd_sdk.mjs esdk-decrypt --key-id ARN -i IN -o OUT [--encryption-context k=v ...]
//       An Encryption SDK message with the KMS keyring (provider "aws-kms", key ARN), the KMS
//       client pointed at kmsd.
//
// Environment: KMSD_ENDPOINT (https://127.0.0.1:PORT), KMSD_CA_BUNDLE (PEM), AWS_REGION,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (the SDK's own credential chain reads them).
// The SDKs are loaded from $ESDK_NODE_PREFIX/node_modules when set, else beside this file.
//
// Exit status: 0 on success, 1 when a check or the operation fails, 2 on a usage error.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const prefix = process.env.ESDK_NODE_PREFIX || HERE;
const require = createRequire(path.join(prefix, 'node_modules', 'x.js'));
const kms = require('@aws-sdk/client-kms');
const { NodeHttpHandler } = require('@smithy/node-http-handler');

function usage(msg) {
    process.stderr.write(`kmsd_sdk.mjs: ${msg}\n`);
    process.exit(2);
}

const endpoint = process.env.KMSD_ENDPOINT || usage('set KMSD_ENDPOINT');
const caFile = process.env.KMSD_CA_BUNDLE || usage('set KMSD_CA_BUNDLE');
const region = process.env.AWS_REGION || usage('set AWS_REGION');

// The Encryption SDK's KMS keyring calls client.generateDataKey() etc.: the aggregated v3 client
// (kms.KMS) has those methods, the bare KMSClient only send().
function client(extra = {}, Kind = kms.KMSClient) {
    const agent = new https.Agent({ ca: fs.readFileSync(caFile), keepAlive: true });
    return new Kind({
        endpoint,
        region,
        maxAttempts: 1,
        requestHandler: new NodeHttpHandler({ httpsAgent: agent }),
        ...extra,
    });
}

let failures = 0;
async function check(name, fn) {
    try {
        await fn();
        console.log(`ok ${name}`);
    } catch (e) {
        failures++;
        console.log(`FAIL ${name}: ${e.name || ''} ${e.message}`);
    }
}

function expect(cond, why) {
    if (!cond) {
        throw new Error(why);
    }
}

async function expectError(name, promise, errorName) {
    try {
        await promise;
    } catch (e) {
        expect(e.name === errorName, `${name}: expected ${errorName}, got ${e.name}: ${e.message}`);
        expect(e.$metadata && e.$metadata.httpStatusCode === 400,
            `${name}: HTTP ${e.$metadata && e.$metadata.httpStatusCode}, not 400`);
        expect(e.$metadata.requestId, `${name}: no x-amzn-RequestId`);
        return;
    }
    throw new Error(`${name}: succeeded, expected ${errorName}`);
}

async function kmsSuite() {
    const c = client();
    let keyArn;
    let keyId;
    const plaintext = Buffer.from('kmsd from the AWS SDK for JavaScript v3');
    await check('CreateKey', async () => {
        const r = await c.send(new kms.CreateKeyCommand({ Description: 'js sdk' }));
        keyArn = r.KeyMetadata.Arn;
        keyId = r.KeyMetadata.KeyId;
        expect(keyArn.startsWith(`arn:aws:kms:${region}:`), `Arn ${keyArn}`);
        expect(r.KeyMetadata.CreationDate instanceof Date &&
            Math.abs(r.KeyMetadata.CreationDate - Date.now()) < 600000,
            `CreationDate ${r.KeyMetadata.CreationDate}`);
        expect(r.KeyMetadata.KeyState === 'Enabled', `KeyState ${r.KeyMetadata.KeyState}`);
    });
    let blob;
    await check('Encrypt', async () => {
        const r = await c.send(new kms.EncryptCommand({
            KeyId: keyId, Plaintext: plaintext, EncryptionContext: { purpose: 'sdk' },
        }));
        blob = r.CiphertextBlob;
        expect(r.KeyId === keyArn, `KeyId ${r.KeyId}`);
        expect(blob.length > plaintext.length, 'short blob');
    });
    await check('Decrypt', async () => {
        const r = await c.send(new kms.DecryptCommand({
            CiphertextBlob: blob, EncryptionContext: { purpose: 'sdk' },
        }));
        expect(Buffer.from(r.Plaintext).equals(plaintext), 'plaintext differs');
        expect(r.KeyId === keyArn, `KeyId ${r.KeyId}`);
    });
    await check('Decrypt with another context is refused', () => expectError('Decrypt',
        c.send(new kms.DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { purpose: 'x' } })),
        'InvalidCiphertextException'));
    await check('GenerateDataKey', async () => {
        const r = await c.send(new kms.GenerateDataKeyCommand({ KeyId: keyArn, KeySpec: 'AES_256' }));
        expect(r.Plaintext.length === 32, `Plaintext ${r.Plaintext.length} bytes`);
        const d = await c.send(new kms.DecryptCommand({ CiphertextBlob: r.CiphertextBlob }));
        expect(Buffer.from(d.Plaintext).equals(Buffer.from(r.Plaintext)), 'data key differs');
    });
    await check('Sign and Verify', async () => {
        const k = await c.send(new kms.CreateKeyCommand({
            KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY',
        }));
        const id = k.KeyMetadata.KeyId;
        const msg = Buffer.from('signed by kmsd');
        const s = await c.send(new kms.SignCommand({
            KeyId: id, Message: msg, SigningAlgorithm: 'ECDSA_SHA_256',
        }));
        const v = await c.send(new kms.VerifyCommand({
            KeyId: id, Message: msg, Signature: s.Signature, SigningAlgorithm: 'ECDSA_SHA_256',
        }));
        expect(v.SignatureValid === true, 'SignatureValid false');
        await expectError('Verify of another message', c.send(new kms.VerifyCommand({
            KeyId: id, Message: Buffer.from('other'), Signature: s.Signature,
            SigningAlgorithm: 'ECDSA_SHA_256',
        })), 'KMSInvalidSignatureException');
    });
    const alias = `alias/js-${process.pid}`;
    await check('CreateAlias and ListAliases', async () => {
        await c.send(new kms.CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
        const r = await c.send(new kms.ListAliasesCommand({ KeyId: keyId }));
        expect(r.Aliases.some((a) => a.AliasName === alias && a.TargetKeyId === keyId),
            `aliases ${JSON.stringify(r.Aliases)}`);
    });
    await check('ScheduleKeyDeletion', async () => {
        const r = await c.send(new kms.ScheduleKeyDeletionCommand({
            KeyId: keyId, PendingWindowInDays: 7,
        }));
        expect(r.KeyState === 'PendingDeletion', `KeyState ${r.KeyState}`);
        expect(r.DeletionDate instanceof Date && r.DeletionDate > Date.now(),
            `DeletionDate ${r.DeletionDate}`);
    });
    await check('a key pending deletion refuses Encrypt', () => expectError('Encrypt',
        c.send(new kms.EncryptCommand({ KeyId: keyId, Plaintext: plaintext })),
        'KMSInvalidStateException'));
    await check('an unknown access key is refused', () => expectError('ListKeys',
        client({ credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'x'.repeat(40) } })
            .send(new kms.ListKeysCommand({})), 'UnrecognizedClientException'));
    await check('a wrong secret is refused', () => expectError('ListKeys',
        client({
            credentials: {
                accessKeyId: process.env.AWS_ACCESS_KEY_ID,
                secretAccessKey: 'y'.repeat(40),
            },
        }).send(new kms.ListKeysCommand({})), 'InvalidSignatureException'));
    await check('a request signed for another region is refused', () => expectError('ListKeys',
        client({ region: region === 'eu-west-3' ? 'us-west-2' : 'eu-west-3' })
            .send(new kms.ListKeysCommand({})), 'InvalidSignatureException'));
    await check('a key ARN of another account is refused', () => expectError('Encrypt',
        c.send(new kms.EncryptCommand({
            KeyId: keyArn.replace(/:\d{12}:/, ':111122223333:'), Plaintext: plaintext,
        })), 'AccessDeniedException'));
    if (failures) {
        process.exit(1);
    }
}

function parseArgs(argv) {
    const o = { context: {} };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[++i];
        if (v === undefined) {
            usage(`${a} needs a value`);
        }
        if (a === '--key-id') {
            o.keyId = v;
        } else if (a === '-i') {
            o.input = v;
        } else if (a === '-o') {
            o.output = v;
        } else if (a === '--encryption-context') {
            const eq = v.indexOf('=');
            if (eq < 1) {
                usage(`--encryption-context ${v}: give KEY=VALUE`);
            }
            o.context[v.slice(0, eq)] = v.slice(eq + 1);
        } else {
            usage(`unknown option ${a}`);
        }
    }
    if (!o.keyId || !o.input || !o.output) {
        usage('give --key-id, -i and -o');
    }
    return o;
}

async function esdk(mode, argv) {
    const o = parseArgs(argv);
    const esdkNode = require('@aws-crypto/client-node');
    const keyring = new esdkNode.KmsKeyringNode({
        generatorKeyId: o.keyId,
        clientProvider: () => client({}, kms.KMS),
    });
    const { encrypt, decrypt } = esdkNode.buildClient(
        esdkNode.CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const input = fs.readFileSync(o.input);
    let out;
    if (mode === 'esdk-encrypt') {
        const r = await encrypt(keyring, input, { encryptionContext: o.context });
        out = r.result;
    } else {
        const r = await decrypt(keyring, input);
        for (const [k, v] of Object.entries(o.context)) {
            if (r.messageHeader.encryptionContext[k] !== v) {
                throw new Error(`the message's encryption context lacks ${k}=${v}`);
            }
        }
        out = r.plaintext;
    }
    const tmp = `${o.output}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, out);
    fs.renameSync(tmp, o.output);
}

const [mode, ...rest] = process.argv.slice(2);
try {
    if (mode === 'kms-suite') {
        await kmsSuite();
    } else if (mode === 'esdk-encrypt' || mode === 'esdk-decrypt') {
        await esdk(mode, rest);
    } else {
        usage('give kms-suite, esdk-encrypt or esdk-decrypt');
    }
} catch (e) {
    process.stderr.write(`kmsd_sdk.mjs: ${e.name || 'Error'}: ${e.message}\n`);
    process.exit(1);
}
