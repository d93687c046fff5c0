'use strict'
// kafkajs: SASL/PLAIN over TLS on a SASL_SSL listener (issue 16); the steps are in
// security_steps.js, shared with security.js and security-ssl.js.
//
// Own broker (broker.js saslSslBroker(): one SASL_SSL listener, PLAIN with users alice
// and bob, server authentication only: the broker-wide ssl.client.auth=required does not
// apply to SASL_SSL listeners, KIP-684). Clients: `ssl: { ca }` (Node's tls verifies the
// broker's certificate and host name by default: bootstrap localhost:<port>, then the
// advertised 127.0.0.1), `sasl: { mechanism: 'plain', username, password }`.
//
// 1. alice: admin.createTopics (2 partitions), 20 records (record i to partition i % 2);
//    a group member (subscribe, fromBeginning) reads them and commits {0: 6, 1: 4} with
//    metadata (commitOffsets); admin.fetchOffsets reads the commit back.
// 2. alice with a wrong password: producer.connect() rejects within 20 s with
//    KafkaJSSASLAuthenticationError; nothing is sent.
// 3. an unknown user: the same.
// 4. alice's credentials, but a client that trusts only another CA (`ca` the rogue CA):
//    the client refuses the broker's certificate, connect() rejects.
// 5. alice reads the topic again (a fresh group): exactly her 20 records at offsets
//    0..9 per partition.
const fs = require('fs')
const c = require('./compat')
const s = require('./security_steps')
const { SASL_USERS, saslSslBroker } = require('./broker')

c.main(async () => {
  const own = saslSslBroker() // stopped after the verdict; kept (log printed) on FAIL
  await own.start()
  c.log(`own broker (SASL_SSL, PLAIN) on ${own.bootstrap}, data and certificates in ${own.dir}`)
  const ca = [fs.readFileSync(own.certs.ca_pem)]
  const as = (username, password, extra = {}, trust = ca) =>
    c.kafka(own.bootstrapLocalhost, `strom-compat-kafkajs-${username}`, { ssl: { ca: trust }, sasl: { mechanism: 'plain', username, password }, ...extra })
  const topic = c.topic()
  const group = c.topic('-group')
  const alice = as('alice', SASL_USERS.alice)

  // 1. alice
  const admin = alice.admin()
  await c.within(30, 'alice admin.connect', admin.connect())
  await s.aliceSteps(alice, admin, topic, group)

  // 2./3. Refused logins; 4. a client that does not trust the broker.
  const wrong = await s.refusedLogin('wrong password', 'alice', as('alice', 'not-' + SASL_USERS.alice, s.REFUSED_RETRY), topic)
  const unknown = await s.refusedLogin('unknown user', 'mallory', as('mallory', 'mallory-secret', s.REFUSED_RETRY), topic)
  const untrusted = await s.refusedConnection('broker certificate not trusted', 'alice',
    as('alice', SASL_USERS.alice, s.REFUSED_RETRY, [fs.readFileSync(own.certs.rogue_ca_pem)]), topic, own)

  // 5. alice reads the whole topic again.
  await s.finalRead(alice, admin, topic)
  await admin.disconnect()
  if (own.exit !== null) c.fail(`own broker exited during the scenario with ${own.exit}`)
  c.passed(`alice (SASL over TLS): CreateTopics, ${s.COUNT} records produced and read back (group), group commit ${JSON.stringify(s.COMMIT)} read back; wrong password: ${wrong}; unknown user: ${unknown}; client trusting another CA: ${untrusted}; nothing of theirs in the topic`)
})
