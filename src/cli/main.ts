import { Command, Option } from 'commander';
import pino from 'pino';
import { CONFIG_SETTINGS, ConfigError, loadConfig, settingHelp, type MaxineConfig } from '../config/index.ts';
import type { RunningMaxine } from '../server.ts';
import { registerAdminCommands } from './admin.ts';
import { exitOnSignals } from './shutdown.ts';
import { describeStartupError } from './startup-error.ts';
import { prepareRuntimeForServing } from './serving-runtime.ts';

async function serve(flags: Record<string, unknown>): Promise<void> {
  let config: MaxineConfig;
  try {
    config = loadConfig({ flags, env: process.env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`maxine: ${err.message}\n`);
    process.exit(2);
  }
  prepareRuntimeForServing();
  // Loaded here so that --help and configuration errors don't load the HTTP stack.
  const { startMaxine } = await import('../server.ts');
  const starting = startMaxine(config);
  let running: RunningMaxine | undefined;
  // Handlers go in before start-up finishes: a SIGTERM that lands while the
  // store opens or the port binds must still shut down cleanly, not kill.
  const bootLogger = pino({ level: config.logLevel, base: { service: 'maxine' } });
  exitOnSignals({
    signals: process,
    close: async () => (await starting).close(),
    logger: {
      info: (obj, msg) => (running?.logger ?? bootLogger).info(obj, msg),
      warn: (obj, msg) => (running?.logger ?? bootLogger).warn(obj, msg),
      error: (obj, msg) => (running?.logger ?? bootLogger).error(obj, msg),
    },
    timeoutMs: config.shutdownTimeoutMs,
    exit: (code) => process.exit(code),
  });
  try {
    running = await starting;
  } catch (err) {
    process.stderr.write(`maxine: ${describeStartupError(err, config)}\n`);
    process.exit(1);
  }
}

const program = new Command('maxine')
  .description('Service registry, discovery server and traffic control plane for microservices')
  // Usage errors exit 2 like configuration errors; --help still exits 0.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

const serveCommand = program
  .command('serve')
  .description('Run a Maxine server')
  .addHelpText(
    'after',
    '\nEach setting is taken from its flag, else its environment variables (in the order listed),\n' +
      'else the config file (--config), else its default.',
  )
  .action(serve);
// Commander defaults are deliberately not used: loadConfig must see which
// flags were actually given so that they win over the environment.
for (const s of CONFIG_SETTINGS) serveCommand.addOption(new Option(`${s.flag} <${s.kind.metavar}>`, settingHelp(s)));
registerAdminCommands(program);

await program.parseAsync();
