'use strict'
// A strom broker owned by one scenario (the Node counterpart of lib/broker.py):
// `$STROM_BIN serve --listeners <LISTENER>://127.0.0.1:PORT --log-dirs DIR` (plus
// --override key=value for each of `overrides`) on a free port with its own data
// dir; restart() keeps both. Without STROM_BIN (runner used with --bootstrap) the
// scenario is reported unsupported. sslBroker()/saslSslBroker() generate their
// certificates with lib/certs.py; scramBroker() gets its credentials from the strom CLI
// (createScramUsers()).
const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')
const { spawn, spawnSync } = require('child_process')
const c = require('./compat')

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

function canConnect(port) {
  return new Promise(resolve => {
    const sock = net.connect({ host: '127.0.0.1', port })
    const done = ok => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(500, () => done(false))
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}

class OwnBroker {
  // listener: the listener's scheme (security protocol), PLAINTEXT or e.g. SASL_PLAINTEXT;
  // overrides: [[key, value]], each passed as `--override key=value`; keepOnFailure: after
  // a FAIL verdict print the tail of the broker log and keep the dir instead of removing it.
  constructor(extraArgs = [], { listener = 'PLAINTEXT', overrides = [], keepOnFailure = false } = {}) {
    this.binary = process.env.STROM_BIN
    if (!this.binary) c.unsupported('needs its own broker (STROM_BIN), not available with --bootstrap')
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strom-own-'))
    this.keepOnFailure = keepOnFailure
    c.atExit(code => (this.keepOnFailure && code === c.EXIT_FAIL ? this.keep() : this.close()))
    this.listener = listener
    this.overrides = overrides
    this.extra = extraArgs
    this.port = null
    this.proc = null
    this.exit = null
  }

  get bootstrap() {
    return `127.0.0.1:${this.port}`
  }

  // localhost:<port>: TLS clients bootstrap by the name (the certificate's DNS SAN) and
  // then connect to the advertised 127.0.0.1 (its IP SAN).
  get bootstrapLocalhost() {
    return `localhost:${this.port}`
  }

  args() {
    const args = ['serve', '--listeners', `${this.listener}://${this.bootstrap}`, '--log-dirs', path.join(this.dir, 'data'),
      '--override', 'strom.http.listener=127.0.0.1:0']
    for (const [k, v] of this.overrides) args.push('--override', `${k}=${v}`)
    return args.concat(this.extra)
  }

  async start(timeout = 20) {
    if (this.port === null) this.port = await freePort()
    const log = fs.openSync(path.join(this.dir, 'strom.log'), 'a')
    this.exit = null
    this.proc = spawn(this.binary, this.args(), { stdio: ['ignore', log, log] })
    fs.closeSync(log)
    const exited = new Promise(resolve => this.proc.once('exit', (code, sig) => resolve((this.exit = sig || code))))
    this.exited = exited
    const dl = new c.Deadline(timeout)
    while (!dl.expired()) {
      if (this.exit !== null) c.fail(`own broker exited with ${this.exit} during startup (log ${this.dir})`)
      if (await canConnect(this.port)) return this
      await c.sleep(50)
    }
    c.fail(`own broker did not listen on ${this.bootstrap} within ${timeout}s`)
  }

  // SIGTERM (or SIGKILL), SIGKILL after 15 s; waits for the exit.
  async stop(kill = false) {
    if (!this.proc) return null
    const proc = this.proc
    this.proc = null
    if (this.exit === null) {
      proc.kill(kill ? 'SIGKILL' : 'SIGTERM')
      const t = setTimeout(() => proc.kill('SIGKILL'), 15000)
      await this.exited
      clearTimeout(t)
    }
    return this.exit
  }

  async restart(kill = false) {
    await this.stop(kill)
    return this.start()
  }

  async close() {
    await this.stop()
    fs.rmSync(this.dir, { recursive: true, force: true })
  }

  logTail(n = 40) {
    try {
      return fs.readFileSync(path.join(this.dir, 'strom.log'), 'utf8').split('\n').filter(l => l).slice(-n)
    } catch (e) {
      return [`(cannot read strom.log: ${e})`]
    }
  }

  // The broker log's current size: pass it to logSince().
  logMark() {
    try {
      return fs.statSync(path.join(this.dir, 'strom.log')).size
    } catch (e) {
      return 0
    }
  }

  // The broker log's lines written after logMark() returned `mark`.
  logSince(mark) {
    try {
      return fs.readFileSync(path.join(this.dir, 'strom.log')).subarray(mark).toString('utf8').split('\n').filter(l => l)
    } catch (e) {
      return [`(cannot read strom.log: ${e})`]
    }
  }

  // The reasons (`error=…`) of the connections the broker refused at TLS level since
  // `mark` ("TLS handshake failed", "TLS client refused"), as lib/broker.py tls_refusals():
  // waits up to `wait` seconds for the first (the broker logs after sending its alert).
  async tlsRefusals(mark, wait = 5) {
    const dl = new c.Deadline(wait)
    for (;;) {
      const out = this.logSince(mark)
        .filter(l => /TLS handshake failed|TLS client refused|TLS handshake not completed/.test(l))
        .map(l => (l.includes(' error=') ? l.split(' error=').slice(1).join(' error=') : l.split(' reason=').pop()).trim())
      if (out.length || dl.expired()) return out
      await c.sleep(100)
    }
  }

  // The broker's refused SASL logins since `mark` ("authentication failed … user=…
  // reason=…"), each as `user=… reason=…` (`reason=…` without a user), as lib/broker.py
  // auth_refusals(): waits up to `wait` seconds for the first.
  async authRefusals(mark, wait = 5) {
    const dl = new c.Deadline(wait)
    for (;;) {
      const out = this.logSince(mark)
        .filter(l => l.includes('authentication failed') && l.includes(' reason='))
        .map(l => {
          const why = l.split(' reason=').slice(1).join(' reason=').trim()
          const user = l.includes(' user=') ? l.split(' user=')[1].split(' ')[0] : ''
          return user ? `user=${user} reason=${why}` : `reason=${why}`
        })
      if (out.length || dl.expired()) return out
      await c.sleep(100)
    }
  }

  // The broker logged a refused SASL login whose reason contains `reason` since `mark`
  // (else the scenario fails); returns that line's `user=… reason=…`.
  async expectAuthRefusal(mark, reason, label) {
    const logged = await this.authRefusals(mark)
    const hit = logged.find(r => r.includes(reason))
    if (!hit) c.fail(`${label}: the broker logged no refused login with reason ${JSON.stringify(reason)}; it logged ${JSON.stringify(logged.slice(0, 5))}`)
    return hit
  }

  // Stops the broker and keeps its dir (strom.log, data/), printing the log's tail.
  async keep() {
    const exit = this.exit
    await this.stop()
    if (exit !== null) process.stdout.write(`own broker had exited by itself with ${exit}\n`)
    process.stdout.write(`---- last 40 lines of the own broker's log ${this.dir}/strom.log ----\n`)
    for (const line of this.logTail(40)) process.stdout.write(`  ${line}\n`)
    process.stdout.write(`kept ${this.dir} (strom.log, data/)\n`)
  }
}

// SASL/PLAIN (issue 16), as lib/broker.py: the users and Kafka's broker settings of the
// `security` scenario (one SASL_PLAINTEXT listener, PLAIN, PlainLoginModule users).
const SASL_USERS = { alice: 'alice-secret', bob: 'bob-secret' }

function plainJaasConfig(users = SASL_USERS) {
  const entries = Object.entries(users).map(([u, p]) => `user_${u}="${p}"`)
  return `org.apache.kafka.common.security.plain.PlainLoginModule required ${entries.join(' ')};`
}

function saslPlainOverrides(users = SASL_USERS) {
  return [
    ['listener.security.protocol.map', 'SASL_PLAINTEXT:SASL_PLAINTEXT'],
    ['sasl.enabled.mechanisms', 'PLAIN'],
    ['listener.name.sasl_plaintext.plain.sasl.jaas.config', plainJaasConfig(users)],
  ]
}

// An OwnBroker with one SASL_PLAINTEXT listener (PLAIN, SASL_USERS); not started.
function saslPlainBroker({ users = SASL_USERS, keepOnFailure = true } = {}) {
  return new OwnBroker([], { listener: 'SASL_PLAINTEXT', overrides: saslPlainOverrides(users), keepOnFailure })
}

// TLS (issue 16), as lib/broker.py: SSL and SASL_SSL listeners with the test certificates
// of lib/certs.py, generated per broker into <dir>/tls by running that script with the
// system python3 (one generator for every client); `own.certs` holds their paths
// (ca_pem, alice_crt, alice_key, mallory_crt, mallory_key, rogue_ca_pem, ...).
function withCerts(own) {
  const py = process.env.COMPAT_SYSTEM_PYTHON || 'python3'
  const r = spawnSync(py, [path.join(__dirname, '..', 'lib', 'certs.py'), path.join(own.dir, 'tls')], { encoding: 'utf8', timeout: 120000 })
  if (r.status !== 0) c.fail(`cannot generate the test certificates (${py} lib/certs.py) into ${own.dir}/tls: ${r.error || ''} ${(r.stderr || r.stdout || '').slice(-800)}`)
  own.certs = JSON.parse(r.stdout)
  return own
}

function sslOverrides(certs, clientAuth = 'required') {
  return [
    ['listener.security.protocol.map', 'SSL:SSL'],
    ['ssl.keystore.type', 'PEM'],
    ['ssl.keystore.location', certs.broker_pem],
    ['ssl.truststore.type', 'PEM'],
    ['ssl.truststore.location', certs.ca_pem],
    ['ssl.client.auth', clientAuth],
  ]
}

// An OwnBroker with one SSL listener, ssl.client.auth=required by default; not started.
function sslBroker({ clientAuth = 'required', keepOnFailure = true } = {}) {
  const own = withCerts(new OwnBroker([], { listener: 'SSL', keepOnFailure }))
  own.overrides = sslOverrides(own.certs, clientAuth)
  return own
}

// One SASL_SSL listener with PLAIN, server authentication only; the broker-wide
// ssl.client.auth=required must not apply to it (KIP-684), as in lib/broker.py.
function saslSslOverrides(certs, users = SASL_USERS) {
  return [
    ['listener.security.protocol.map', 'SASL_SSL:SASL_SSL'],
    ['listener.name.sasl_ssl.ssl.keystore.type', 'PEM'],
    ['listener.name.sasl_ssl.ssl.keystore.location', certs.broker_pem],
    ['ssl.truststore.type', 'PEM'],
    ['ssl.truststore.location', certs.ca_pem],
    ['ssl.client.auth', 'required'],
    ['sasl.enabled.mechanisms', 'PLAIN'],
    ['listener.name.sasl_ssl.plain.sasl.jaas.config', plainJaasConfig(users)],
  ]
}

// An OwnBroker with one SASL_SSL listener (PLAIN, SASL_USERS); not started.
function saslSslBroker({ users = SASL_USERS, keepOnFailure = true } = {}) {
  const own = withCerts(new OwnBroker([], { listener: 'SASL_SSL', keepOnFailure }))
  own.overrides = saslSslOverrides(own.certs, users)
  return own
}

// SCRAM (issue 16), as lib/broker.py: one SASL_PLAINTEXT listener with SCRAM-SHA-256 and
// SCRAM-SHA-512, PLAIN for SCRAM_ADMIN only (whom the strom CLI logs in as); the
// credentials are set in the broker's metadata with `strom user scram set`.
const SCRAM_USERS = { alice: ['SCRAM-SHA-512', 'alice-secret'], bob: ['SCRAM-SHA-256', 'bob-secret'] }
const SCRAM_ADMIN = ['admin', 'admin-secret']

function scramOverrides() {
  return [
    ['listener.security.protocol.map', 'SASL_PLAINTEXT:SASL_PLAINTEXT'],
    ['sasl.enabled.mechanisms', 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512'],
    ['listener.name.sasl_plaintext.plain.sasl.jaas.config', plainJaasConfig({ [SCRAM_ADMIN[0]]: SCRAM_ADMIN[1] })],
    // Only super users may set credentials (until ACLs are enforced).
    ['super.users', `User:${SCRAM_ADMIN[0]}`],
  ]
}

// An OwnBroker with one SASL_PLAINTEXT listener (PLAIN for admin, SCRAM); not started.
function scramBroker({ keepOnFailure = true } = {}) {
  return new OwnBroker([], { listener: 'SASL_PLAINTEXT', overrides: scramOverrides(), keepOnFailure })
}

// `strom user scram <args> -b <own> --command-config <admin.properties> -o json` as
// SCRAM_ADMIN (PLAIN); fails the scenario unless it exits 0. Returns its stdout.
function scramCli(own, args) {
  const props = path.join(own.dir, 'admin.properties')
  if (!fs.existsSync(props)) {
    fs.writeFileSync(props, 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n' +
      `sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="${SCRAM_ADMIN[0]}" password="${SCRAM_ADMIN[1]}";\n`)
  }
  const argv = ['user', 'scram', ...args, '-b', own.bootstrap, '--command-config', props, '-o', 'json']
  const r = spawnSync(own.binary, argv, { encoding: 'utf8', timeout: 60000 })
  if (r.status !== 0) c.fail(`${own.binary} ${argv.join(' ')} exited with ${r.status}: ${r.error || ''} ${(r.stdout || '').slice(-300)} ${(r.stderr || '').slice(-600)}`)
  return r.stdout
}

// `strom user scram list` as {"user mechanism": iterations}.
function scramList(own) {
  const out = {}
  for (const e of JSON.parse(scramCli(own, ['list']))) out[`${e.user} ${e.mechanism}`] = e.iterations
  return out
}

function expectScramList(own, users, what) {
  const want = {}
  for (const [u, [m]] of Object.entries(users)) want[`${u} ${m}`] = 4096
  const got = scramList(own)
  const sorted = o => JSON.stringify(Object.keys(o).sort().map(k => [k, o[k]]))
  if (sorted(got) !== sorted(want)) c.fail(`strom user scram list${what}: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`)
  return got
}

// Sets every SCRAM_USERS credential (strom user scram set, 4096 iterations); `list` must
// show exactly them. Returns a short description.
function createScramUsers(own, users = SCRAM_USERS) {
  for (const [user, [mechanism, password]] of Object.entries(users)) scramCli(own, ['set', user, '--mechanism', mechanism, '--password', password])
  expectScramList(own, users, '')
  const names = Object.entries(users).map(([u, [m]]) => `${u} ${m}`).join(', ')
  c.log(`strom user scram set: ${names}; list shows them`)
  return `credentials set with strom user scram set (${names})`
}

// strom user scram delete <user> --mechanism <its mechanism>; `list` must then show the
// other users only.
function deleteScramUser(own, user, users = SCRAM_USERS) {
  scramCli(own, ['delete', user, '--mechanism', users[user][0]])
  const rest = Object.fromEntries(Object.entries(users).filter(([u]) => u !== user))
  const got = expectScramList(own, rest, ` after deleting ${user}`)
  c.log(`strom user scram delete ${user} --mechanism ${users[user][0]}; list shows ${Object.keys(got).join(', ')}`)
}

// OAUTHBEARER (issue 16), as lib/broker.py: Kafka's default unsecured validator, which must
// find OAUTH_SCOPE in every token.
const OAUTH_SCOPE = 'kafka'

function oauthOverrides() {
  return [
    ['listener.security.protocol.map', 'SASL_PLAINTEXT:SASL_PLAINTEXT'],
    ['sasl.enabled.mechanisms', 'OAUTHBEARER'],
    ['listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config',
      `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorRequiredScope="${OAUTH_SCOPE}";`],
  ]
}

// An OwnBroker with one SASL_PLAINTEXT listener (OAUTHBEARER, required scope); not started.
function oauthBroker({ keepOnFailure = true } = {}) {
  return new OwnBroker([], { listener: 'SASL_PLAINTEXT', overrides: oauthOverrides(), keepOnFailure })
}

// An unsecured JWS as lib/broker.py unsecured_jwt(): base64url({"alg":"none"}) "."
// base64url({sub, iat, exp, scope: [scope]}) "." (empty signature); `lifetime` seconds
// (negative: expired), scope null: no scope claim.
function unsecuredJwt(sub, { lifetime = 3600, scope = OAUTH_SCOPE, alg = 'none' } = {}) {
  const b64 = o => Buffer.from(JSON.stringify(o)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const claims = { sub, iat: Math.min(now, now + lifetime) - 60, exp: now + lifetime }
  if (scope !== null) claims.scope = [scope]
  return `${b64({ alg })}.${b64(claims)}.`
}

module.exports = {
  OwnBroker, freePort, SASL_USERS, plainJaasConfig, saslPlainOverrides, saslPlainBroker,
  sslOverrides, sslBroker, saslSslOverrides, saslSslBroker,
  SCRAM_USERS, scramOverrides, scramBroker, scramCli, createScramUsers, deleteScramUser,
  OAUTH_SCOPE, oauthOverrides, oauthBroker, unsecuredJwt,
}
