import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, delimiter, dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { scratchDir } from './backends.ts';

/**
 * A throwaway PKI for TLS tests, made with the openssl CLI: a CA, a server
 * certificate it signed for 127.0.0.1 and localhost, and client
 * certificates on demand. EC P-256 keys, because RSA key generation would
 * dominate the run time of a TLS suite.
 *
 * When openssl is missing, a local run skips the test with a loud message;
 * with MAXINE_TEST_BACKENDS=required (CI) the test fails instead, as for
 * the redis and etcd suites.
 */

export interface TestPki {
  readonly dir: string;
  /** CA certificate PEM (self-signed, CN=Maxine Test CA). */
  readonly caFile: string;
  /** Server certificate for 127.0.0.1 and localhost (subjectAltName IP:127.0.0.1,DNS:localhost), signed by the CA. */
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** Issue a client certificate signed by the CA with the given subject (e.g. '/CN=orders-bot/O=Acme'); returns PEM paths. */
  clientCert(subject: string): Promise<{ certFile: string; keyFile: string }>;
  /**
   * Issue a new server certificate (new key) for the same names, written to
   * the given paths (to test reload); returns the new certificate's SHA-256
   * fingerprint as node's X509Certificate.fingerprint256 prints it.
   */
  reissueServerCert(certFile: string, keyFile: string): Promise<string>;
  /** A second, unrelated CA plus a client certificate signed by it (to test that foreign client certificates are refused). */
  foreignClientCert(subject: string): Promise<{ certFile: string; keyFile: string }>;
}

// An explicit configuration, so the extensions do not depend on the distribution's openssl.cnf.
const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;

const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function createTestPki(t: TestContext): Promise<TestPki | null> {
  const openssl = opensslBinary(t);
  if (openssl === null) return null;
  const dir = scratchDir(t, 'pki');
  const config = join(dir, 'openssl.cnf');
  await writeFile(config, OPENSSL_CONFIG);
  let issued = 0;
  const unique = (stem: string) => join(dir, `${stem}-${++issued}`);

  const run = (args: readonly string[]) =>
    new Promise<void>((resolve, reject) => {
      execFile(openssl, args, (error, _stdout, stderr) => {
        if (error) reject(new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${stderr || error.message}`));
        else resolve();
      });
    });

  const newCa = async (subject: string) => {
    const stem = unique('ca');
    const ca = { certFile: `${stem}.pem`, keyFile: `${stem}.key` };
    await run(['req', '-x509', '-config', config, '-extensions', 'ca_ext', ...NEW_EC_KEY,
      '-keyout', ca.keyFile, '-out', ca.certFile, '-days', '2', '-subj', subject]);
    return ca;
  };

  const issue = async (
    ca: { certFile: string; keyFile: string },
    subject: string,
    extensions: 'server_ext' | 'client_ext',
    out: { certFile: string; keyFile: string },
  ) => {
    const csr = `${unique('request')}.csr`;
    await run(['req', '-new', '-config', config, ...NEW_EC_KEY, '-keyout', out.keyFile, '-out', csr, '-subj', subject]);
    // A random serial instead of -CAcreateserial: concurrent issues would race on the shared serial file.
    await run(['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
      '-days', '2', '-extfile', config, '-extensions', extensions, '-out', out.certFile]);
  };

  const ca = await newCa('/CN=Maxine Test CA');
  const server = { certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key') };
  await issue(ca, '/CN=localhost', 'server_ext', server);

  const newClient = async (issuer: { certFile: string; keyFile: string }, subject: string) => {
    const stem = unique('client');
    const client = { certFile: `${stem}.pem`, keyFile: `${stem}.key` };
    await issue(issuer, subject, 'client_ext', client);
    return client;
  };

  return {
    dir,
    caFile: ca.certFile,
    serverCertFile: server.certFile,
    serverKeyFile: server.keyFile,
    clientCert: (subject) => newClient(ca, subject),
    foreignClientCert: async (subject) => newClient(await newCa('/CN=Unrelated Test CA'), subject),
    async reissueServerCert(certFile, keyFile) {
      // Written beside the targets and renamed over them, the way Kubernetes
      // and certbot replace files: a reloader that follows the old inode misses it.
      const temp = (path: string) => join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
      const staged = { certFile: temp(certFile), keyFile: temp(keyFile) };
      await issue(ca, '/CN=localhost', 'server_ext', staged);
      await rename(staged.keyFile, keyFile);
      await rename(staged.certFile, certFile);
      return new X509Certificate(await readFile(certFile)).fingerprint256;
    },
  };
}

/** The openssl binary's path, or null after marking the test skipped (or throwing, in CI). */
function opensslBinary(t: TestContext): string | null {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'openssl');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this PATH entry.
    }
  }
  const message = 'openssl not found on PATH: this TLS test did not run (apt-get install openssl)';
  if (process.env['MAXINE_TEST_BACKENDS'] === 'required') {
    throw new Error(`${message}; MAXINE_TEST_BACKENDS=required forbids skipping`);
  }
  console.warn(`\n!!! SKIPPED: ${message}\n`);
  t.skip(message);
  return null;
}
