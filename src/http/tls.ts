import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, unwatchFile, watch, watchFile, type FSWatcher, type StatsListener } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type https from 'node:https';
import type { Socket } from 'node:net';
import { basename, dirname, resolve } from 'node:path';
import tls from 'node:tls';

export const CLIENT_AUTH_MODES = ['none', 'optional', 'required'] as const;
export type ClientAuthMode = (typeof CLIENT_AUTH_MODES)[number];

export interface TlsSettings {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA bundle that client certificates must chain to; required when clientAuth is not 'none'. */
  readonly clientCaFile: string | null;
  readonly clientAuth: ClientAuthMode;
}

/** The files' contents as read, before any check. */
interface Pem {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | null;
}

/**
 * Options for fastify's `https`: the certificate and key, and for client
 * authentication the CA plus requestCert. 'optional' does not reject an
 * unverified client at the handshake, so a request can still be served
 * (clientCertificateSubject then answers null). Reads the files
 * synchronously: meant for start-up. Throws an Error naming the file and
 * the problem.
 */
export function tlsServerOptions(settings: TlsSettings): https.ServerOptions {
  const pem = readPemSync(settings);
  verifyPem(settings, pem);
  const options: https.ServerOptions = contextOptions(pem);
  if (settings.clientAuth !== 'none') {
    options.requestCert = true;
    options.rejectUnauthorized = settings.clientAuth === 'required';
  }
  return options;
}

/** Wait for a burst of file events to end: a certificate and its key are written as separate files. */
const SETTLE_MS = 250;
const POLL_INTERVAL_MS = 1000;

/**
 * Swaps changed certificate, key and client CA files into a running server.
 * New handshakes get the new context; established connections keep theirs.
 * A replacement that cannot be read or does not verify leaves the previous
 * context serving and is reported through onError; a pair whose two files
 * land further apart than SETTLE_MS reports one mismatch, then reloads when
 * the second file arrives.
 *
 * Change detection uses two mechanisms, because neither alone is reliable:
 * - fs.watch on the containing directories, filtered by file name. Watching
 *   the directory rather than the file survives replacement by rename
 *   (atomic writes, certbot's symlink updates), which a watch on the file
 *   loses along with the old inode. It reacts within milliseconds.
 * - fs.watchFile polling every second. stat() follows symlinks, so it sees
 *   a Kubernetes secret update, which renames the `..data` symlink and never
 *   touches the file names being watched; it also works where inotify does
 *   not (network filesystems, some container overlays, an exhausted watch
 *   limit).
 * Both feed the same settle timer, and a reload whose files are unchanged
 * since the last attempt does nothing, so a change seen twice is applied
 * (or reported) once.
 *
 * The watchers and timer hold the process open, like the server they serve:
 * close() belongs next to the server's close.
 */
export class TlsReloader {
  private readonly watchers: FSWatcher[] = [];
  private readonly polled: Array<{ file: string; listener: StatsListener }> = [];
  private settleTimer: NodeJS.Timeout | null = null;
  /** Reloads run one at a time, so a slow read cannot apply older files over newer ones. */
  private queue: Promise<void> = Promise.resolve();
  /** The files' contents (or read failure) last acted on. */
  private lastSeen: string | null = null;
  private closed = false;

  constructor(
    private readonly server: tls.Server,
    private readonly settings: TlsSettings,
    private readonly hooks: { onReload(fingerprint256: string): void; onError(error: Error): void },
  ) {}

  start(): void {
    if (this.closed || this.polled.length > 0) throw new Error('TlsReloader.start() may be called once, before close()');
    const files = watchedFiles(this.settings).map((file) => resolve(file));
    try {
      this.lastSeen = signature(readPemSync(this.settings));
    } catch {
      // Being replaced right now, after the server read them: the replacement's own events reload whatever lands.
    }
    const namesByDirectory = new Map<string, Set<string>>();
    for (const file of files) {
      const names = namesByDirectory.get(dirname(file)) ?? new Set<string>();
      names.add(basename(file));
      namesByDirectory.set(dirname(file), names);
    }
    for (const [directory, names] of namesByDirectory) this.watchDirectory(directory, names);
    for (const file of files) {
      const listener: StatsListener = () => this.schedule();
      watchFile(file, { interval: POLL_INTERVAL_MS }, listener);
      this.polled.push({ file, listener });
    }
  }

  close(): void {
    this.closed = true;
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = null;
    for (const watcher of this.watchers.splice(0)) watcher.close();
    for (const { file, listener } of this.polled.splice(0)) unwatchFile(file, listener);
  }

  private watchDirectory(directory: string, names: ReadonlySet<string>): void {
    const degraded = (error: unknown) =>
      this.hooks.onError(new Error(`cannot watch ${directory} for TLS file changes (${asError(error).message}); polling every ${POLL_INTERVAL_MS} ms instead`));
    let watcher: FSWatcher;
    try {
      watcher = watch(directory, (_event, name) => {
        // Some platforms do not say which file changed.
        if (name === null || names.has(name)) this.schedule();
      });
    } catch (error) {
      degraded(error);
      return;
    }
    watcher.on('error', (error) => {
      watcher.close();
      degraded(error);
    });
    this.watchers.push(watcher);
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      this.queue = this.queue.then(() => this.reload());
    }, SETTLE_MS);
  }

  private async reload(): Promise<void> {
    const read = await readPem(this.settings).catch(asError);
    if (this.closed) return;
    const seen = read instanceof Error ? `unreadable: ${read.message}` : signature(read);
    if (seen === this.lastSeen) return;
    this.lastSeen = seen;
    let fingerprint256: string;
    try {
      if (read instanceof Error) throw read;
      fingerprint256 = verifyPem(this.settings, read);
      const options = contextOptions(read);
      // setSecureContext assigns the server's fields before it builds the
      // context, so a failure inside it would leave them half replaced.
      tls.createSecureContext(options);
      this.server.setSecureContext(options);
    } catch (error) {
      this.hooks.onError(new Error(`TLS reload failed, still serving the previous certificate: ${asError(error).message}`, { cause: error }));
      return;
    }
    this.hooks.onReload(fingerprint256);
  }
}

/**
 * The verified client certificate's subject, e.g. 'CN=orders-bot,O=Acme':
 * attributes in the certificate's order, values escaped as in RFC 2253 (so
 * a ',' inside a value cannot forge another attribute). Null when the
 * socket is not TLS or the client presented no certificate that verified.
 */
export function clientCertificateSubject(socket: Socket): string | null {
  if (!(socket instanceof tls.TLSSocket) || !socket.authorized) return null;
  const certificate = socket.getPeerX509Certificate();
  return certificate === undefined ? null : certificate.subject.split('\n').join(',');
}

function clientCaFile(settings: TlsSettings): string | null {
  if (settings.clientAuth === 'none') return null;
  if (settings.clientCaFile === null) {
    throw new Error(`TLS client authentication '${settings.clientAuth}' needs a client CA file to verify client certificates against`);
  }
  return settings.clientCaFile;
}

function watchedFiles(settings: TlsSettings): string[] {
  const ca = clientCaFile(settings);
  return ca === null ? [settings.certFile, settings.keyFile] : [settings.certFile, settings.keyFile, ca];
}

function readPemSync(settings: TlsSettings): Pem {
  const read = (file: string, role: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      throw unreadable(file, role, error);
    }
  };
  const ca = clientCaFile(settings);
  return {
    cert: read(settings.certFile, 'certificate'),
    key: read(settings.keyFile, 'private key'),
    ca: ca === null ? null : read(ca, 'client CA'),
  };
}

async function readPem(settings: TlsSettings): Promise<Pem> {
  const read = async (file: string, role: string) => {
    try {
      return await readFile(file, 'utf8');
    } catch (error) {
      throw unreadable(file, role, error);
    }
  };
  const ca = clientCaFile(settings);
  const [cert, key, caPem] = await Promise.all([
    read(settings.certFile, 'certificate'),
    read(settings.keyFile, 'private key'),
    ca === null ? null : read(ca, 'client CA'),
  ]);
  return { cert, key, ca: caPem };
}

function unreadable(file: string, role: string, error: unknown): Error {
  return new Error(`cannot read the TLS ${role} file ${file}: ${asError(error).message}`, { cause: error });
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
const PRIVATE_KEY_BLOCK = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/;

/**
 * Checks what OpenSSL would otherwise reject with a message naming no file
 * (or, for a CA bundle, partly ignore). Returns the certificate's SHA-256
 * fingerprint.
 */
function verifyPem(settings: TlsSettings, pem: Pem): string {
  const certificate = parseCertificates(pem.cert, settings.certFile, 'certificate')[0]!;
  if (!PRIVATE_KEY_BLOCK.test(pem.key)) {
    throw new Error(`the TLS private key file ${settings.keyFile} is not PEM: it has no "-----BEGIN ... PRIVATE KEY-----" block`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem.key);
  } catch (error) {
    throw new Error(`the TLS private key file ${settings.keyFile} holds no usable private key: ${asError(error).message}`, { cause: error });
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new Error(`the TLS private key file ${settings.keyFile} does not match the certificate in ${settings.certFile}`);
  }
  if (pem.ca !== null) parseCertificates(pem.ca, settings.clientCaFile!, 'client CA');
  return certificate.fingerprint256;
}

function parseCertificates(text: string, file: string, role: string): X509Certificate[] {
  const blocks = text.match(CERTIFICATE_BLOCK);
  if (blocks === null) throw new Error(`the TLS ${role} file ${file} is not PEM: it has no "-----BEGIN CERTIFICATE-----" block`);
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new Error(`the TLS ${role} file ${file} holds an invalid certificate (block ${index + 1}): ${asError(error).message}`, { cause: error });
    }
  });
}

function contextOptions(pem: Pem): tls.SecureContextOptions {
  const options: tls.SecureContextOptions = { cert: pem.cert, key: pem.key, minVersion: 'TLSv1.2' };
  if (pem.ca !== null) options.ca = pem.ca;
  return options;
}

function signature(pem: Pem): string {
  return `${pem.cert}\0${pem.key}\0${pem.ca ?? ''}`;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
