#!/usr/bin/env node
// A small command line around the AWS Encryption SDK for JavaScript (@aws-crypto/client-node),
// the other side of the interoperability test tests/integration/test_interop_js.sh.
//
//   node esdk.mjs encrypt|decrypt -i IN -o OUT
//       --wrapping-key-file F --key-namespace NS --key-name N
//       [--wrapping-algorithm RSA_PKCS1|RSA_OAEP_SHA1|RSA_OAEP_SHA256|RSA_OAEP_SHA384|RSA_OAEP_SHA512]
//       [--frame-length N] [--suite 0x0478|0x0578|...]
//       [--commitment-policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT|REQUIRE_ENCRYPT_ALLOW_DECRYPT|
//                            FORBID_ENCRYPT_ALLOW_DECRYPT]
//       [--encryption-context k=v ...] [--header-out FILE]
//
// Without --wrapping-algorithm the key file holds a raw AES key (16, 24 or 32 bytes) for
// RawAesKeyringNode; with it, a PEM RSA key for RawRsaKeyringNode (a private key, or for encrypt
// also a public key). On decrypt every --encryption-context pair must be in the message's
// context. --header-out writes the message header (suite, version, frame length, context, data
// keys) as JSON, for debugging.
//
// The output goes to a temporary file beside OUT that is renamed to OUT only on success: a
// failed run leaves no OUT (the decrypt stream releases frames before it has checked the
// signature of a signed suite, so nothing may be trusted until the stream has ended).
//
// The SDK is loaded from $ESDK_NODE_PREFIX/node_modules when that is set (the integration test
// installs it outside the source tree), else from node_modules beside this file.
//
// Exit status: 0 on success, 1 when the operation fails, 2 on a usage error.

import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { constants as cryptoConstants, createPublicKey, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PKCS1_REVERT = '--security-revert=CVE-2023-46809';

class UsageError extends Error {}

// The temporary output file while one is open: removed on any failure, including the errors that
// the SDK's inner streams throw outside the pipeline (readable-stream rethrows them).
let pendingTmp;
function dieUncaught(err) {
  if (pendingTmp !== undefined) fs.rmSync(pendingTmp, { force: true });
  process.stderr.write(`esdk.mjs: failed: ${err?.message ?? err}\n`);
  process.exit(1);
}
process.on('uncaughtException', dieUncaught);
process.on('unhandledRejection', dieUncaught);

const USAGE = `usage: esdk.mjs encrypt|decrypt -i IN -o OUT --wrapping-key-file F --key-namespace NS
                 --key-name N [--wrapping-algorithm RSA_PKCS1|RSA_OAEP_SHA1|RSA_OAEP_SHA256|
                 RSA_OAEP_SHA384|RSA_OAEP_SHA512] [--frame-length N] [--suite 0xNNNN]
                 [--commitment-policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT|REQUIRE_ENCRYPT_ALLOW_DECRYPT|
                 FORBID_ENCRYPT_ALLOW_DECRYPT] [--encryption-context k=v ...] [--header-out FILE]`;

const RSA_ALGORITHMS = {
  RSA_PKCS1: { padding: cryptoConstants.RSA_PKCS1_PADDING, oaepHash: undefined },
  RSA_OAEP_SHA1: { padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
  RSA_OAEP_SHA256: { padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
  RSA_OAEP_SHA384: { padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha384' },
  RSA_OAEP_SHA512: { padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha512' },
};

const VALUE_OPTIONS = {
  '-i': 'input',
  '--input': 'input',
  '-o': 'output',
  '--output-file': 'output',
  '--wrapping-key-file': 'keyFile',
  '--key-namespace': 'keyNamespace',
  '--key-name': 'keyName',
  '--wrapping-algorithm': 'wrappingAlgorithm',
  '--frame-length': 'frameLength',
  '--suite': 'suite',
  '--algorithm-suite': 'suite',
  '--commitment-policy': 'commitmentPolicy',
  '--header-out': 'headerOut',
};

function parseArgs(argv) {
  const opts = { context: [] };
  if (argv.length === 0 || argv[0] === '-h' || argv[0] === '--help') {
    throw new UsageError('missing command');
  }
  opts.command = argv[0];
  if (opts.command !== 'encrypt' && opts.command !== 'decrypt') {
    throw new UsageError(`unknown command '${opts.command}'`);
  }
  for (let i = 1; i < argv.length; i++) {
    let arg = argv[i];
    let inline;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--encryption-context') {
      // k=v, repeatable; further k=v words may follow one flag.
      opts.context.push(next());
      while (inline === undefined && i + 1 < argv.length && !argv[i + 1].startsWith('-')) {
        opts.context.push(argv[++i]);
      }
    } else if (VALUE_OPTIONS[arg]) {
      const name = VALUE_OPTIONS[arg];
      if (opts[name] !== undefined) throw new UsageError(`${arg} given twice`);
      opts[name] = next();
    } else {
      throw new UsageError(`unknown option '${argv[i]}'`);
    }
  }
  for (const [flag, name] of [
    ['-i', 'input'],
    ['-o', 'output'],
    ['--wrapping-key-file', 'keyFile'],
    ['--key-namespace', 'keyNamespace'],
    ['--key-name', 'keyName'],
  ]) {
    if (opts[name] === undefined || opts[name] === '') throw new UsageError(`${flag} is required`);
  }
  const context = {};
  for (const pair of opts.context) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--encryption-context '${pair}' is not k=v`);
    const key = pair.slice(0, eq);
    if (Object.prototype.hasOwnProperty.call(context, key)) {
      throw new UsageError(`--encryption-context key '${key}' given twice`);
    }
    context[key] = pair.slice(eq + 1);
  }
  opts.context = context;
  if (opts.frameLength !== undefined) {
    if (!/^[0-9]+$/.test(opts.frameLength)) {
      throw new UsageError(`--frame-length '${opts.frameLength}' is not a number`);
    }
    opts.frameLength = Number(opts.frameLength);
  }
  if (opts.suite !== undefined) {
    if (!/^(0x)?[0-9a-fA-F]{1,4}$/.test(opts.suite)) {
      throw new UsageError(`--suite '${opts.suite}' is not a hex suite id like 0x0578`);
    }
    opts.suite = parseInt(opts.suite.replace(/^0x/, ''), 16);
  }
  if (opts.wrappingAlgorithm !== undefined && !RSA_ALGORITHMS[opts.wrappingAlgorithm]) {
    throw new UsageError(`unknown --wrapping-algorithm '${opts.wrappingAlgorithm}'`);
  }
  return opts;
}

function loadSdk() {
  const prefixes = [];
  if (process.env.ESDK_NODE_PREFIX) prefixes.push(process.env.ESDK_NODE_PREFIX);
  prefixes.push(HERE);
  for (const prefix of prefixes) {
    try {
      return createRequire(path.join(path.resolve(prefix), 'package.json'))(
        '@aws-crypto/client-node',
      );
    } catch (err) {
      if (err.code !== 'MODULE_NOT_FOUND') throw err;
    }
  }
  throw new Error(
    `@aws-crypto/client-node not found under ${prefixes.join(' or ')} (run npm ci there)`,
  );
}

function makeKeyring(sdk, opts) {
  const keyBytes = fs.readFileSync(opts.keyFile);
  const { keyNamespace, keyName } = opts;
  if (opts.wrappingAlgorithm === undefined) {
    const suites = {
      16: sdk.RawAesWrappingSuiteIdentifier.AES128_GCM_IV12_TAG16_NO_PADDING,
      24: sdk.RawAesWrappingSuiteIdentifier.AES192_GCM_IV12_TAG16_NO_PADDING,
      32: sdk.RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    };
    const wrappingSuite = suites[keyBytes.length];
    if (wrappingSuite === undefined) {
      throw new UsageError(
        `${opts.keyFile}: a raw AES key has 16, 24 or 32 bytes, this file has ${keyBytes.length}` +
          ' (give --wrapping-algorithm for an RSA key)',
      );
    }
    return new sdk.RawAesKeyringNode({
      keyNamespace,
      keyName,
      unencryptedMasterKey: new Uint8Array(keyBytes),
      wrappingSuite,
    });
  }
  const { padding, oaepHash } = RSA_ALGORITHMS[opts.wrappingAlgorithm];
  const pem = keyBytes.toString('utf8');
  const rsaKey = {};
  if (/-----BEGIN (RSA )?PRIVATE KEY-----/.test(pem)) {
    const priv = createPrivateKey(pem);
    if (priv.asymmetricKeyType !== 'rsa') throw new Error(`${opts.keyFile} is not an RSA key`);
    rsaKey.privateKey = priv.export({ type: 'pkcs8', format: 'pem' });
    rsaKey.publicKey = createPublicKey(priv).export({ type: 'spki', format: 'pem' });
  } else if (/-----BEGIN (RSA )?PUBLIC KEY-----/.test(pem)) {
    if (opts.command === 'decrypt') throw new Error(`decrypt needs a private key, ${opts.keyFile} holds a public key`);
    const pub = createPublicKey(pem);
    if (pub.asymmetricKeyType !== 'rsa') throw new Error(`${opts.keyFile} is not an RSA key`);
    rsaKey.publicKey = pub.export({ type: 'spki', format: 'pem' });
  } else {
    throw new Error(`${opts.keyFile} is not a PEM RSA key`);
  }
  return new sdk.RawRsaKeyringNode({ keyNamespace, keyName, rsaKey, padding, oaepHash });
}

function headerJson(header) {
  const hex = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('hex');
  return {
    version: header.version,
    suiteId: `0x${header.suiteId.toString(16).padStart(4, '0')}`,
    messageId: hex(header.messageId),
    contentType: header.contentType,
    frameLength: header.frameLength,
    encryptionContext: header.encryptionContext,
    encryptedDataKeys: header.encryptedDataKeys.map((edk) => ({
      providerId: edk.providerId,
      providerInfoHex: edk.rawInfo ? hex(edk.rawInfo) : Buffer.from(edk.providerInfo, 'utf8').toString('hex'),
      encryptedDataKeyLength: edk.encryptedDataKey.byteLength,
    })),
  };
}

async function run(opts) {
  const sdk = loadSdk();
  const policyName = opts.commitmentPolicy ?? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT';
  const commitmentPolicy = sdk.CommitmentPolicy[policyName];
  if (typeof commitmentPolicy !== 'string') {
    throw new UsageError(`unknown --commitment-policy '${policyName}'`);
  }
  if (opts.suite !== undefined && sdk.AlgorithmSuiteIdentifier[opts.suite] === undefined) {
    throw new UsageError(`--suite 0x${opts.suite.toString(16)} is not an algorithm suite the SDK knows`);
  }
  const keyring = makeKeyring(sdk, opts);
  const { encryptStream, decryptStream } = sdk.buildClient(commitmentPolicy);

  const outDir = path.dirname(path.resolve(opts.output));
  const tmp = path.join(outDir, `.${path.basename(opts.output)}.esdk-${process.pid}.tmp`);
  // Both files are opened synchronously, so that an early failure (a bad input path, or an
  // option the SDK rejects when the stream is built) cannot race an asynchronous open and
  // leave the temporary file behind.
  const inFd = fs.openSync(opts.input, 'r');
  let outFd;
  let input;
  let output;
  let header;
  try {
    outFd = fs.openSync(tmp, 'wx', 0o600);
    pendingTmp = tmp;
    let transform;
    if (opts.command === 'encrypt') {
      // No plaintextLength: @aws-crypto/encrypt-node 4.2.4 counts a chunk's tail twice when a
      // chunk spans a frame boundary and then fails with 'Encrypted data exceeded
      // plaintextLength' on inputs larger than one read chunk (64 KiB).
      const op = { encryptionContext: opts.context };
      if (opts.suite !== undefined) op.suiteId = opts.suite;
      if (opts.frameLength !== undefined) op.frameLength = opts.frameLength;
      transform = encryptStream(keyring, op);
      transform.once('MessageHeader', (h) => {
        header = h;
      });
    } else {
      transform = decryptStream(keyring);
      transform.once('MessageHeader', (h) => {
        header = h;
        const got = h.encryptionContext;
        for (const [k, v] of Object.entries(opts.context)) {
          if (!Object.prototype.hasOwnProperty.call(got, k) || got[k] !== v) {
            const have = Object.prototype.hasOwnProperty.call(got, k) ? `'${got[k]}'` : 'no such key';
            transform.destroy(
              new Error(`encryption context mismatch: expected ${k}='${v}', the message has ${have}`),
            );
            return;
          }
        }
      });
    }
    input = fs.createReadStream(null, { fd: inFd });
    output = fs.createWriteStream(null, { fd: outFd });
    await pipeline(input, transform, output);
    if (header === undefined) throw new Error('the SDK produced no message header');
    if (opts.headerOut) {
      fs.writeFileSync(opts.headerOut, JSON.stringify(headerJson(header), null, 2) + '\n');
    }
    fs.renameSync(tmp, opts.output);
    pendingTmp = undefined;
  } catch (err) {
    // Before the streams own them, the descriptors are closed here; after, pipeline did it.
    if (input === undefined) fs.closeSync(inFd);
    if (output === undefined && outFd !== undefined) fs.closeSync(outFd);
    if (outFd !== undefined) fs.rmSync(tmp, { force: true });
    pendingTmp = undefined;
    throw err;
  }
}

function needsPkcs1Revert(argv) {
  // Node >= 18.19.1 / 20.11.1 refuse RSA_PKCS1_PADDING in privateDecrypt (Marvin attack) unless
  // OpenSSL has implicit rejection or the process runs with --security-revert=CVE-2023-46809,
  // an option that cannot go through NODE_OPTIONS. The test only decrypts its own messages.
  return (
    argv[0] === 'decrypt' &&
    argv.some((a, i) => a === 'RSA_PKCS1' && argv[i - 1] === '--wrapping-algorithm') &&
    !process.execArgv.includes(PKCS1_REVERT)
  );
}

async function main() {
  const argv = process.argv.slice(2);
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`esdk.mjs: error: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (needsPkcs1Revert(argv) && process.env.ESDK_NO_REEXEC === undefined) {
    const r = spawnSync(process.execPath, [PKCS1_REVERT, fileURLToPath(import.meta.url), ...argv], {
      stdio: ['inherit', 'pipe', 'pipe'],
      env: { ...process.env, ESDK_NO_REEXEC: '1' },
    });
    // Drop node's "SECURITY WARNING: Reverting CVE-2023-46809" line (node prints it on stdout),
    // pass on everything else.
    const clean = (buf) =>
      (buf ?? Buffer.alloc(0))
        .toString('utf8')
        .split('\n')
        .filter((l) => !l.startsWith('SECURITY WARNING: Reverting CVE-2023-46809'))
        .join('\n');
    process.stdout.write(clean(r.stdout));
    process.stderr.write(clean(r.stderr));
    if (r.error) process.stderr.write(`esdk.mjs: cannot run ${process.execPath}: ${r.error.message}\n`);
    return r.status ?? 1;
  }
  try {
    await run(opts);
    return 0;
  } catch (err) {
    const usage = err instanceof UsageError;
    let msg = err.message ?? String(err);
    if (msg === 'unencryptedDataKey has not been set') {
      // What the SDK says when no encrypted data key of the message matched and opened.
      msg = `no encrypted data key in the message could be decrypted with ${opts.keyNamespace}/${opts.keyName} (${msg})`;
    }
    process.stderr.write(`esdk.mjs: ${usage ? 'error' : `${opts.command} failed`}: ${msg}\n`);
    return usage ? 2 : 1;
  }
}

process.exitCode = await main();
