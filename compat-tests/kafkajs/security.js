'use strict'
// kafkajs: SASL/PLAIN on a SASL_PLAINTEXT listener (issue 16); the steps are in
// security_steps.js, shared with security-ssl.js and security-sasl-ssl.js.
//
// Own broker (broker.js saslPlainBroker(): one SASL_PLAINTEXT listener, PLAIN, users
// alice and bob, as lib/broker.py). Clients: `ssl: false`, `sasl: { mechanism: 'plain',
// username, password }`. The same records as lib/compat.py's security_records().
//
// 1. alice: admin.createTopics (2 partitions), 20 records (record i to partition i % 2,
//    key sec-<ii>, value alice-<ii>); a group member (subscribe, fromBeginning) reads
//    them and commits {0: 6, 1: 4} with metadata (commitOffsets); admin.fetchOffsets
//    reads the commit back.
// 2. alice with a wrong password: producer.connect() rejects within 20 s with
//    KafkaJSSASLAuthenticationError (anywhere in the cause chain); nothing is sent.
// 3. an unknown user: the same.
// 4. alice reads the topic again (a fresh group): exactly her 20 records at offsets
//    0..9 per partition.
const c = require('./compat')
const s = require('./security_steps')
const { SASL_USERS, saslPlainBroker } = require('./broker')

c.main(async () => {
  const own = saslPlainBroker() // stopped after the verdict; kept (log printed) on FAIL
  await own.start()
  c.log(`own broker (SASL_PLAINTEXT, PLAIN) on ${own.bootstrap}, data in ${own.dir}`)
  const as = (username, password, extra = {}) =>
    c.kafka(own.bootstrap, `strom-compat-kafkajs-${username}`, { ssl: false, sasl: { mechanism: 'plain', username, password }, ...extra })
  const topic = c.topic()
  const group = c.topic('-group')
  const alice = as('alice', SASL_USERS.alice)

  // 1. alice
  const admin = alice.admin()
  await c.within(30, 'alice admin.connect', admin.connect())
  await s.aliceSteps(alice, admin, topic, group)

  // 2./3. Refused logins.
  const wrong = await s.refusedLogin('wrong password', 'alice', as('alice', 'not-' + SASL_USERS.alice, s.REFUSED_RETRY), topic)
  const unknown = await s.refusedLogin('unknown user', 'mallory', as('mallory', 'mallory-secret', s.REFUSED_RETRY), topic)

  // 4. alice reads the whole topic again.
  await s.finalRead(alice, admin, topic)
  await admin.disconnect()
  if (own.exit !== null) c.fail(`own broker exited during the scenario with ${own.exit}`)
  c.passed(`alice: CreateTopics, ${s.COUNT} records produced and read back (group), group commit ${JSON.stringify(s.COMMIT)} read back; wrong password: ${wrong}; unknown user: ${unknown}; nothing of theirs in the topic`)
})
