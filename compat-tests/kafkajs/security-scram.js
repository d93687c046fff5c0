'use strict'
// kafkajs: SASL/SCRAM-SHA-512 and SCRAM-SHA-256 on a SASL_PLAINTEXT listener (issue 16);
// the steps are in security_steps.js, shared with the other security scenarios.
//
// Own broker (broker.js scramBroker(): one SASL_PLAINTEXT listener, PLAIN for the user
// admin only, SCRAM-SHA-256 and SCRAM-SHA-512, as lib/broker.py); createScramUsers() runs
// `strom user scram set` (as admin) for alice (SCRAM-SHA-512) and bob (SCRAM-SHA-256)
// before any client. Clients: `ssl: false`, `sasl: { mechanism: 'scram-sha-512' (or
// 'scram-sha-256'), username, password }`.
//
// 1. alice (scram-sha-512): admin.createTopics (2 partitions), 20 records (record i to
//    partition i % 2); a group member (subscribe, fromBeginning) reads them and commits
//    {0: 6, 1: 4} with metadata (commitOffsets); admin.fetchOffsets reads the commit back.
//    bob (scram-sha-256) gets the topic's metadata (admin.fetchTopicMetadata).
// 2. alice with a wrong password: producer.connect() rejects within 20 s with
//    KafkaJSSASLAuthenticationError; nothing is sent; the broker logs the refusal ("wrong
//    client proof").
// 3. an unknown user: the same (broker: no SCRAM credential for the user).
// 4. `strom user scram delete bob --mechanism SCRAM-SHA-256`: bob can no longer log in.
// 5. alice reads the topic again (a fresh group): exactly her 20 records at offsets
//    0..9 per partition.
const c = require('./compat')
const s = require('./security_steps')
const { SCRAM_USERS, scramBroker, createScramUsers, deleteScramUser } = require('./broker')

c.main(async () => {
  const own = scramBroker() // stopped after the verdict; kept (log printed) on FAIL
  await own.start()
  c.log(`own broker (SASL_PLAINTEXT, PLAIN for admin, SCRAM-SHA-256/512) on ${own.bootstrap}, data in ${own.dir}`)
  const scram = (username, password, mechanism, extra = {}) =>
    c.kafka(own.bootstrap, `strom-compat-kafkajs-${username}`, { ssl: false, sasl: { mechanism: mechanism.toLowerCase(), username, password }, ...extra })
  const asUser = (user, extra = {}) => scram(user, SCRAM_USERS[user][1], SCRAM_USERS[user][0], extra)
  const topic = c.topic()
  const group = c.topic('-group')
  const created = createScramUsers(own)
  const alice = asUser('alice')

  // 1. alice; bob gets metadata.
  const admin = alice.admin()
  await c.within(30, 'alice admin.connect', admin.connect())
  await s.aliceSteps(alice, admin, topic, group)
  const bob = asUser('bob').admin()
  await c.within(30, 'bob admin.connect', bob.connect())
  await c.waitPartitions(bob, topic, s.NPART)
  await bob.disconnect()
  c.log(`bob (SCRAM-SHA-256) sees ${topic}`)

  // 2./3. Refused logins; 4. bob's credential deleted.
  const [aliceMech, alicePw] = SCRAM_USERS.alice
  const wrong = await s.refusedLogin('wrong password', 'alice', scram('alice', 'not-' + alicePw, aliceMech, s.REFUSED_RETRY), topic,
    own, 'wrong client proof')
  const unknown = await s.refusedLogin('unknown user', 'mallory', scram('mallory', 'mallory-secret', aliceMech, s.REFUSED_RETRY), topic,
    own, 'no SCRAM credential for user "mallory"')
  deleteScramUser(own, 'bob')
  const deleted = await s.refusedLogin('bob after strom user scram delete', 'bob', asUser('bob', s.REFUSED_RETRY), topic,
    own, 'no SCRAM credential for user "bob"')

  // 5. alice reads the whole topic again.
  await s.finalRead(alice, admin, topic)
  await admin.disconnect()
  if (own.exit !== null) c.fail(`own broker exited during the scenario with ${own.exit}`)
  c.passed(`${created}; alice (SCRAM-SHA-512): CreateTopics, ${s.COUNT} records produced and read back (group), group commit ${JSON.stringify(s.COMMIT)} read back; bob (SCRAM-SHA-256) gets metadata; wrong password: ${wrong}; unknown user: ${unknown}; bob after strom user scram delete: ${deleted}; nothing of theirs in the topic`)
})
