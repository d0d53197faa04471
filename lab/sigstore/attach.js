// SPDX-License-Identifier: GPL-3.0-or-later
// Lab only: attach a Sigstore bundle to an image the way registries store signatures, with @sigstore/oci
// (an OCI 1.1 artifact manifest whose subject is the image; the referrers API where the registry has one, the
// sha256-<hex> tag index otherwise). @sigstore/oci signs in only when the registry asks for credentials.
//
//   REGISTRY_USERNAME=... REGISTRY_PASSWORD=... node attach.js REGISTRY/REPOSITORY@sha256:HEX BUNDLE
'use strict';

const fs = require('fs');
const { attachArtifactToImage } = require('@sigstore/oci');

const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

async function main() {
  const [image, bundleFile] = process.argv.slice(2);
  const match = /^(.+)@(sha256:[0-9a-f]{64})$/.exec(image || '');
  if (!match || !bundleFile) {
    process.stderr.write('usage: node attach.js REGISTRY/REPOSITORY@sha256:HEX BUNDLE\n');
    process.exit(2);
  }
  const bundle = fs.readFileSync(bundleFile);
  const statement = JSON.parse(Buffer.from(JSON.parse(bundle).dsseEnvelope.payload, 'base64'));
  const descriptor = await attachArtifactToImage({
    imageName: match[1],
    imageDigest: match[2],
    artifact: bundle,
    mediaType: BUNDLE_MEDIA_TYPE,
    annotations: {
      'dev.sigstore.bundle.content': 'dsse-envelope',
      'dev.sigstore.bundle.predicateType': statement.predicateType,
    },
    credentials: { username: process.env.REGISTRY_USERNAME || '', password: process.env.REGISTRY_PASSWORD || '' },
  });
  process.stdout.write(`${descriptor.digest}\n`);
}

main().catch((error) => {
  const cause = error.cause ? `: ${error.cause.message || error.cause}` : '';
  process.stderr.write(`attach.js: ${error.message}${cause}\n`);
  process.exit(1);
});
