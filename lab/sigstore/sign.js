// SPDX-License-Identifier: GPL-3.0-or-later
// Lab only: a real Sigstore bundle for an image manifest digest, made offline.
//
//   node sign.js --keys DIR --digest sha256:HEX --name REPOSITORY --subject SAN --issuer URL --out BUNDLE
//
// @sigstore/sign builds the bundle (a DSSE in-toto statement, predicate https://sigstore.dev/cosign/sign/v1, the
// digest as subject) against @sigstore/mock's Fulcio, Rekor and TSA, which live inside this process (nock answers
// their URLs; no other network traffic is allowed). Their keys and root certificates are made once and kept in
// DIR/mock-authorities.json, with DIR/trusted_root.json built from them, so every bundle made on this machine
// verifies against that one trusted root.
//
// What sigstore-python 4.5 needs that the mock does not give (pinned versions: these depend on mock internals):
// whole-second clocks, the TSA's a few seconds ahead (the mock TSA may write fractional times that even
// sigstore-js rejects); the Fulcio certificate PEM re-wrapped at 64 columns in the Rekor entry; the Rekor entry
// logged as the standard dsse body (envelope hash, payload hash, signatures), not as submitted; the inclusion
// proof's default-valued fields (logIndex 0, hashes []) written out.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { DSSEBundleBuilder, FulcioSigner, RekorWitness, TSAWitness } = require('@sigstore/sign');
const { bundleToJSON } = require('@sigstore/bundle');
const mock = require('@sigstore/mock');

const fromMock = (name) => require(require.resolve(name, { paths: [path.dirname(require.resolve('@sigstore/mock'))] }));
const nock = fromMock('nock');
const pkijs = fromMock('pkijs');

const URLS = {
  fulcio: 'https://fulcio.lab.invalid',
  rekor: 'https://rekor.lab.invalid',
  tsa: 'https://tsa.lab.invalid',
};
const TSA_AHEAD_SECONDS = 3;

function parseArgs(argv) {
  const wanted = ['keys', 'digest', 'name', 'subject', 'issuer', 'out'];
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = (argv[i] || '').replace(/^--/, '');
    if (!wanted.includes(key) || argv[i + 1] === undefined) usage(`unknown or incomplete argument ${argv[i]}`);
    args[key] = argv[i + 1];
  }
  for (const key of wanted) if (!args[key]) usage(`--${key} is missing`);
  if (!/^sha256:[0-9a-f]{64}$/.test(args.digest)) usage(`--digest ${args.digest} is not sha256:<64 hex>`);
  return args;
}

function usage(problem) {
  process.stderr.write(`sign.js: ${problem}\nusage: node sign.js --keys DIR --digest sha256:HEX --name REPOSITORY --subject SAN --issuer URL --out BUNDLE\n`);
  process.exit(2);
}

const newKeyPair = () => crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const privatePem = (pair) => pair.privateKey.export({ format: 'pem', type: 'pkcs8' });
const pairFromPem = (pem) => {
  const privateKey = crypto.createPrivateKey(pem);
  return { privateKey, publicKey: crypto.createPublicKey(privateKey) };
};
const spkiDer = (pair) => pair.publicKey.export({ format: 'der', type: 'spki' });

// The authorities' keys and root certificates: made on first use, then reused.
async function authorities(dir) {
  const file = path.join(dir, 'mock-authorities.json');
  if (fs.existsSync(file)) {
    const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
    return {
      created: saved.created,
      ca: pairFromPem(saved.ca.key),
      caRoot: Buffer.from(saved.ca.root, 'base64'),
      ctlog: pairFromPem(saved.ctlog.key),
      tlog: pairFromPem(saved.tlog.key),
      tsa: pairFromPem(saved.tsa.key),
      tsaRoot: Buffer.from(saved.tsa.root, 'base64'),
      tsaIntermediate: Buffer.from(saved.tsa.intermediate, 'base64'),
    };
  }
  const made = { created: new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000).toISOString() };
  made.ca = newKeyPair();
  made.ctlog = newKeyPair();
  made.tlog = newKeyPair();
  made.tsa = newKeyPair();
  made.caRoot = (await mock.initializeCA(made.ca)).rootCertificate;
  const tsa = await mock.initializeTSA(made.tsa);
  made.tsaRoot = tsa.rootCertificate;
  made.tsaIntermediate = tsa.intCertificate;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const saved = {
    created: made.created,
    ca: { key: privatePem(made.ca), root: made.caRoot.toString('base64') },
    ctlog: { key: privatePem(made.ctlog) },
    tlog: { key: privatePem(made.tlog) },
    tsa: { key: privatePem(made.tsa), root: made.tsaRoot.toString('base64'), intermediate: made.tsaIntermediate.toString('base64') },
  };
  fs.writeFileSync(`${file}.new`, JSON.stringify(saved, null, 2), { mode: 0o600 });
  fs.renameSync(`${file}.new`, file);
  return made;
}

// A trusted root (sigstore protobuf-specs TrustedRoot 0.1) naming the mock's authorities.
function trustedRoot(auth) {
  const validFor = { start: auth.created };
  const log = (baseUrl, pair) => ({
    baseUrl,
    hashAlgorithm: 'SHA2_256',
    publicKey: { rawBytes: spkiDer(pair).toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor },
    logId: { keyId: crypto.createHash('sha256').update(spkiDer(pair)).digest('base64') },
  });
  return {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [log(URLS.rekor, auth.tlog)],
    certificateAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
        uri: URLS.fulcio,
        certChain: { certificates: [{ rawBytes: auth.caRoot.toString('base64') }] },
        validFor,
      },
    ],
    ctlogs: [log('https://ctfe.lab.invalid', auth.ctlog)],
    timestampAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'tsa' },
        uri: URLS.tsa,
        certChain: {
          certificates: [{ rawBytes: auth.tsaIntermediate.toString('base64') }, { rawBytes: auth.tsaRoot.toString('base64') }],
        },
        validFor,
      },
    ],
  };
}

// PEM as OpenSSL (and so sigstore-python) writes it: 64 columns, a final newline.
function rewrapPem(pem) {
  const match = /-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/.exec(pem);
  if (!match) throw new Error('Fulcio answered with a certificate that is not PEM');
  const body = match[2].replace(/\s+/g, '').match(/.{1,64}/g).join('\n');
  return `-----BEGIN ${match[1]}-----\n${body}\n-----END ${match[1]}-----\n`;
}

// The Rekor dsse/0.0.1 entry body a real Rekor logs for a proposed DSSE entry.
function canonicalDsseEntry(proposed) {
  if (proposed.kind !== 'dsse') throw new Error(`expected a dsse entry, got ${proposed.kind}`);
  const content = proposed.spec.proposedContent;
  const envelope = JSON.parse(content.envelope);
  const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
  const verifier = Buffer.from(rewrapPem(Buffer.from(content.verifiers[0], 'base64').toString('utf8'))).toString('base64');
  return {
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256(content.envelope) },
      payloadHash: { algorithm: 'sha256', value: sha256(Buffer.from(envelope.payload, 'base64')) },
      signatures: envelope.signatures.map((signature) => ({ signature: signature.sig, verifier })),
    },
  };
}

function serve(base, handler, transform = (body) => body) {
  nock(base)
    .post(handler.path)
    .reply(async (_uri, body) => {
      const request = typeof body === 'string' ? body : JSON.stringify(body);
      const { statusCode, response, contentType } = await handler.fn(transform(request));
      return [statusCode, response, { 'Content-Type': contentType || 'text/plain' }];
    });
}

async function startAuthorities(auth) {
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  const tsaNow = new Date(now.getTime() + TSA_AHEAD_SECONDS * 1000);
  const ca = await mock.initializeCA(auth.ca, await mock.initializeCTLog(auth.ctlog, now), now);
  ca.root = { rawData: auth.caRoot }; // the saved root: the one the trusted root names
  const tsa = await mock.initializeTSA(auth.tsa, tsaNow);
  tsa.rootCert = pkijs.Certificate.fromBER(auth.tsaRoot);
  tsa.intCert = pkijs.Certificate.fromBER(auth.tsaIntermediate); // its hash is in every timestamp (ESSCertIDv2)
  const tlog = await mock.initializeTLog(URLS.rekor, auth.tlog, now);
  nock.disableNetConnect();
  serve(URLS.fulcio, mock.fulcioHandler(ca));
  serve(URLS.rekor, mock.rekorHandler(tlog), (request) => JSON.stringify(canonicalDsseEntry(JSON.parse(request))));
  serve(URLS.tsa, mock.tsaHandler(tsa));
}

// An OIDC token as the CI would hand it to Fulcio (the mock reads its claims, it does not check a signature).
function identityToken(subject, issuer) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ iss: issuer, sub: subject, aud: 'sigstore', iat: now, exp: now + 600 })}.`;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const auth = await authorities(args.keys);
  const rootFile = path.join(args.keys, 'trusted_root.json');
  fs.writeFileSync(`${rootFile}.new`, JSON.stringify(trustedRoot(auth), null, 2));
  fs.renameSync(`${rootFile}.new`, rootFile);
  await startAuthorities(auth);

  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: args.name, digest: { sha256: args.digest.slice('sha256:'.length) } }],
    predicateType: 'https://sigstore.dev/cosign/sign/v1',
    predicate: {},
  };
  const builder = new DSSEBundleBuilder({
    signer: new FulcioSigner({
      fulcioBaseURL: URLS.fulcio,
      identityProvider: { getToken: async () => identityToken(args.subject, args.issuer) },
    }),
    witnesses: [new RekorWitness({ rekorBaseURL: URLS.rekor, entryType: 'dsse' }), new TSAWitness({ tsaBaseURL: URLS.tsa })],
  });
  const bundle = bundleToJSON(
    await builder.create({ data: Buffer.from(JSON.stringify(statement)), type: 'application/vnd.in-toto+json' }),
  );
  for (const entry of bundle.verificationMaterial.tlogEntries || []) {
    const proof = entry.inclusionProof;
    if (proof) {
      proof.logIndex = proof.logIndex || '0';
      proof.hashes = proof.hashes || [];
    }
  }
  fs.writeFileSync(args.out, JSON.stringify(bundle));
}

main().catch((error) => {
  process.stderr.write(`sign.js: ${error.message}${error.cause ? `: ${error.cause.message || error.cause}` : ''}\n`);
  process.exit(1);
});
