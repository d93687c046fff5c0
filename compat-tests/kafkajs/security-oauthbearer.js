'use strict'
// kafkajs: SASL/OAUTHBEARER with unsecured JWTs on a SASL_PLAINTEXT listener (issue 16);
// the steps are in security_steps.js, shared with the other security scenarios.
//
// Own broker (broker.js oauthBroker(): one SASL_PLAINTEXT listener, OAUTHBEARER, Kafka's
// default unsecured validator with unsecuredValidatorRequiredScope="kafka", as
// lib/broker.py). Clients: `ssl: false`, `sasl: { mechanism: 'oauthbearer',
// oauthBearerProvider: async () => ({ value: token }) }`, the token from broker.js
// unsecuredJwt() (kafkajs makes no token itself).
//
// 1. alice: admin.createTopics (2 partitions), 20 records (record i to partition i % 2);
//    a group member (subscribe, fromBeginning) reads them and commits {0: 6, 1: 4} with
//    metadata (commitOffsets); admin.fetchOffsets reads the commit back.
// 2. an expired token (exp 10 minutes ago): producer.connect() rejects within 20 s with
//    KafkaJSSASLAuthenticationError; nothing is sent; the broker logs "the token has
//    expired".
// 3. a token without the scope `kafka`: the same (broker: "the token lacks the required
//    scope kafka").
// 4. alice reads the topic again (a fresh group): exactly her 20 records at offsets
//    0..9 per partition.
const c = require('./compat')
const s = require('./security_steps')
const { OAUTH_SCOPE, oauthBroker, unsecuredJwt } = require('./broker')

c.main(async () => {
  const own = oauthBroker() // stopped after the verdict; kept (log printed) on FAIL
  await own.start()
  c.log(`own broker (SASL_PLAINTEXT, OAUTHBEARER, required scope ${OAUTH_SCOPE}) on ${own.bootstrap}, data in ${own.dir}`)
  // A fresh token for every login (kafkajs calls the provider on each connection).
  const oauth = (sub, claims = {}, extra = {}) =>
    c.kafka(own.bootstrap, `strom-compat-kafkajs-${sub}`, {
      ssl: false, sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: unsecuredJwt(sub, claims) }) }, ...extra,
    })
  const topic = c.topic()
  const group = c.topic('-group')
  const alice = oauth('alice')

  // 1. alice
  const admin = alice.admin()
  await c.within(30, 'alice admin.connect', admin.connect())
  await s.aliceSteps(alice, admin, topic, group)

  // 2./3. Refused tokens.
  const expired = await s.refusedLogin('expired token', 'alice', oauth('alice', { lifetime: -600 }, s.REFUSED_RETRY), topic,
    own, 'the token has expired')
  const noscope = await s.refusedLogin(`token without the scope ${OAUTH_SCOPE}`, 'mallory', oauth('mallory', { scope: null }, s.REFUSED_RETRY), topic,
    own, `the token lacks the required scope ${OAUTH_SCOPE}`)

  // 4. alice reads the whole topic again.
  await s.finalRead(alice, admin, topic)
  await admin.disconnect()
  if (own.exit !== null) c.fail(`own broker exited during the scenario with ${own.exit}`)
  c.passed(`alice (unsecured JWT from oauthBearerProvider): CreateTopics, ${s.COUNT} records produced and read back (group), group commit ${JSON.stringify(s.COMMIT)} read back; expired token: ${expired}; token without the scope: ${noscope}; nothing of theirs in the topic`)
})
