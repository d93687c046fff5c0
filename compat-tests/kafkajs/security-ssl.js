'use strict'
// kafkajs: mutual TLS on an SSL listener (issue 16); the steps are in security_steps.js,
// shared with security.js and security-sasl-ssl.js.
//
// Own broker (broker.js sslBroker(): one SSL listener, PEM keystore and truststore from
// lib/certs.py, ssl.client.auth=required, as lib/broker.py). Clients: `ssl: { ca, cert,
// key }` (PEM buffers; Node's tls verifies the broker's certificate and host name by
// default: bootstrap localhost:<port>, then the advertised 127.0.0.1), alice's certificate.
//
// 1. alice: admin.createTopics (2 partitions), 20 records (record i to partition i % 2);
//    a group member (subscribe, fromBeginning) reads them and commits {0: 6, 1: 4} with
//    metadata (commitOffsets); admin.fetchOffsets reads the commit back.
// 2. a client without a certificate: producer.connect() rejects within 20 s; the broker
//    logs "TLS handshake failed".
// 3. a client with mallory's certificate (signed by a CA the broker does not trust): the same.
// 4. a PLAINTEXT client (`ssl: false`) on the SSL port: the same.
// 5. alice reads the topic again (a fresh group): exactly her 20 records at offsets
//    0..9 per partition.
const fs = require('fs')
const c = require('./compat')
const s = require('./security_steps')
const { sslBroker } = require('./broker')

c.main(async () => {
  const own = sslBroker() // stopped after the verdict; kept (log printed) on FAIL
  await own.start()
  c.log(`own broker (SSL, ssl.client.auth=required) on ${own.bootstrap}, data and certificates in ${own.dir}`)
  const certs = own.certs
  const ca = [fs.readFileSync(certs.ca_pem)]
  const as = (who, ssl, extra = {}) => c.kafka(own.bootstrapLocalhost, `strom-compat-kafkajs-${who}`, { ssl, ...extra })
  const topic = c.topic()
  const group = c.topic('-group')
  const alice = as('alice', { ca, cert: fs.readFileSync(certs.alice_crt), key: fs.readFileSync(certs.alice_key) })

  // 1. alice
  const admin = alice.admin()
  await c.within(30, 'alice admin.connect', admin.connect())
  await s.aliceSteps(alice, admin, topic, group)

  // 2.-4. Refused at TLS level.
  const nocert = await s.refusedConnection('no client certificate', 'anonymous', as('anonymous', { ca }, s.REFUSED_RETRY), topic, own)
  const rogue = await s.refusedConnection('certificate of an untrusted CA', 'mallory',
    as('mallory', { ca, cert: fs.readFileSync(certs.mallory_crt), key: fs.readFileSync(certs.mallory_key) }, s.REFUSED_RETRY), topic, own)
  const plain = await s.refusedConnection('PLAINTEXT client on the SSL port', 'plaintext', as('plaintext', false, s.REFUSED_RETRY), topic, own)

  // 5. alice reads the whole topic again.
  await s.finalRead(alice, admin, topic)
  await admin.disconnect()
  if (own.exit !== null) c.fail(`own broker exited during the scenario with ${own.exit}`)
  c.passed(`alice (client certificate): CreateTopics, ${s.COUNT} records produced and read back (group), group commit ${JSON.stringify(s.COMMIT)} read back; no certificate: ${nocert}; untrusted CA: ${rogue}; PLAINTEXT: ${plain}; nothing of theirs in the topic`)
})
