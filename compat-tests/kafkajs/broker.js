'use strict'
// A strom broker owned by one scenario (the Node counterpart of lib/broker.py):
// `$STROM_BIN serve --listeners PLAINTEXT://127.0.0.1:PORT --log-dirs DIR` on a
// free port with its own data dir; restart() keeps both. Without STROM_BIN
// (runner used with --bootstrap) the scenario is reported unsupported.
const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')
const { spawn } = require('child_process')
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
  constructor(extraArgs = []) {
    this.binary = process.env.STROM_BIN
    if (!this.binary) c.unsupported('needs its own broker (STROM_BIN), not available with --bootstrap')
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strom-own-'))
    c.atExit(() => this.close())
    this.extra = extraArgs
    this.port = null
    this.proc = null
    this.exit = null
  }

  get bootstrap() {
    return `127.0.0.1:${this.port}`
  }

  async start(timeout = 20) {
    if (this.port === null) this.port = await freePort()
    const log = fs.openSync(path.join(this.dir, 'strom.log'), 'a')
    this.exit = null
    this.proc = spawn(this.binary, ['serve', '--listeners', `PLAINTEXT://${this.bootstrap}`, '--log-dirs', path.join(this.dir, 'data'),
      '--override', 'strom.http.listener=127.0.0.1:0', ...this.extra],
      { stdio: ['ignore', log, log] })
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
}

module.exports = { OwnBroker, freePort }
