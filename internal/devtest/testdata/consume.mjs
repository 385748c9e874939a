// Reads mmsgate's delivery events the way a Node application would: the
// AWS SDK v3 SQS client and sqs-consumer (pinned in package-lock.json),
// which deletes each handled batch with DeleteMessageBatch. Prints one JSON
// line per event ({"attr": <attribute event>, "body": <the event>}) until
// it has seen every wanted "id:event" pair (argv[4..]) or 30 s passed.
import { SQSClient } from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';

const [endpoint, queueUrl, ...wanted] = process.argv.slice(2);
const want = new Set(wanted);
const sqs = new SQSClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
const app = Consumer.create({
  queueUrl, sqs, batchSize: 10, waitTimeSeconds: 1, messageAttributeNames: ['All'],
  handleMessageBatch: async (messages) => {
    for (const m of messages) {
      const body = JSON.parse(m.Body);
      console.log(JSON.stringify({ attr: m.MessageAttributes?.event?.StringValue ?? null, body }));
      want.delete(`${body.id}:${body.event}`);
    }
    if (want.size === 0) setTimeout(() => app.stop({ abort: false }), 200);
    return messages;
  },
});
app.on('error', (err) => { console.error('consumer error:', err.message); process.exitCode = 2; });
app.on('processing_error', (err) => { console.error('processing error:', err.message); process.exitCode = 2; });
const timer = setTimeout(() => app.stop({ abort: true }), 30000);
app.on('stopped', () => {
  clearTimeout(timer);
  if (want.size > 0) { console.error('never saw:', [...want].join(' ')); process.exitCode = 1; }
});
app.start();
