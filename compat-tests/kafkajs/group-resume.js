'use strict'
// kafkajs: a lone group member commits offset 60 (with metadata) after 60 of 100
// records; the broker is restarted (SIGTERM); a new member of the group resumes
// exactly at offset 60, and OffsetFetch still returns offset and metadata.
// Reports the time from subscribe to the first assignment (initial delay 3 s).
const c = require('./compat')
const { OwnBroker } = require('./broker')

c.main(async () => {
  const own = new OwnBroker() // stopped and removed after the verdict (c.atExit)
  await own.start()
  const topic = c.topic('-resume')
  const group = c.topic('-resume-group')
  let k = c.kafka(own.bootstrap)
  let admin = k.admin()
  await admin.connect()
  await c.createTopic(admin, topic, 1)
  await c.waitPartitions(admin, topic, 1)
  const producer = k.producer()
  await producer.connect()
  await c.produceAll(producer, admin, topic, [...Array(100).keys()].map(i => ({ key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) })))
  await producer.disconnect()
  await admin.disconnect()

  // A member that hands the first `n` records it receives to `got` and ignores the
  // rest (kafkajs fetches ahead); nothing is committed unless the test does it.
  async function member(n) {
    const consumer = k.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
    const got = []
    const joined = []
    const t0 = Date.now()
    consumer.on(consumer.events.GROUP_JOIN, () => joined.push((Date.now() - t0) / 1000))
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        if (got.length < n) got.push(message)
      },
    })
    return { consumer, got, joined }
  }

  let m = await member(60)
  await c.waitFor(() => m.got.length >= 60, 60, () => `60 records for the first member (got ${m.got.length})`)
  const first = m.got.map(x => Number(x.offset))
  const d = c.firstDiff([...Array(60).keys()], first, 'offset')
  if (d) c.fail(`first member read: ${d}`)
  const joinS = m.joined[0]
  await m.consumer.commitOffsets([{ topic, partition: 0, offset: '60', metadata: 'resume-test' }])
  await c.within(30, 'disconnect', m.consumer.disconnect())

  c.log('restarting the broker')
  await own.restart()
  k = c.kafka(own.bootstrap)
  m = await member(41)
  await c.waitFor(() => m.got.length >= 40, 60, () => `40 records after the restart (got offsets ${m.got.map(x => x.offset)})`)
  await c.sleep(2000) // anything beyond offset 99 (or a re-read) would show up now
  admin = k.admin()
  await admin.connect()
  const fetched = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  await c.within(30, 'disconnect', m.consumer.disconnect())
  await admin.disconnect()
  const offsets = m.got.map(x => Number(x.offset))
  const want = [...Array(40).keys()].map(i => 60 + i)
  const d2 = c.firstDiff(want, offsets, 'offset')
  if (d2) c.fail(`after restart (expected offsets 60..99): ${d2}`)
  const p0 = fetched.length && fetched[0].partitions.find(p => p.partition === 0)
  if (!p0 || p0.offset !== '60' || p0.metadata !== 'resume-test') c.fail(`committed offset/metadata after restart: ${JSON.stringify(fetched)}`)
  if (joinS === undefined || joinS > 3.0 + 5.0) c.fail(`first assignment took ${joinS}s, far beyond the 3 s initial rebalance delay`)
  c.passed(`resumed at offset 60 after restart, commit metadata preserved; subscribe→assignment ${joinS.toFixed(2)}s (initial delay 3 s)`)
})
