// The web UI in a real headless Chromium against a real `timetrail serve --auth on`: data is
// appended through the API, tokens come from `timetrail token create`, and every test drives
// the pages as a user would (search, links, forms, keys) and checks what they show.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { append, enc, openPage, setup, shot, until } from './harness.mjs';

let fx;
const t0 = Date.now();
const iso = (ms) => new Date(ms).toISOString();

before(async () => {
  fx = await setup();
  // A friend who moves, then a backdated correction (valid a day before it was recorded).
  await append(fx, 'friend-1', [{ type: '$put', data: { name: 'Rachel', city: 'New York' }, metadata: { actor: 'joey', reason: 'we met' } }]);
  await append(fx, 'friend-1', [{ type: '$patch', data: { city: 'Paris' }, metadata: { actor: 'monica', reason: 'she moved' } }]);
  await append(fx, 'friend-1', [{ type: '$patch', data: { job: 'buyer' }, valid_from: iso(t0 - 86400000), metadata: { actor: 'ross', reason: 'forgot to record her job' } }]);
  await append(fx, 'friend-2', [{ type: '$put', data: { name: 'Phoebe' }, metadata: { actor: 'joey', reason: 'new friend' } }]);
  await append(fx, 'acme/order-1', [{ type: '$put', data: { status: 'new', total: 10 }, metadata: { actor: 'shop', reason: 'checkout' } }]);
  // A long stream: the timeline shows it a page at a time.
  for (let i = 0; i < 25; i++) {
    await append(fx, 'counter', [{ type: '$put', data: { n: i }, metadata: { actor: 'ticker', reason: `tick ${i}` } }]);
  }
});

after(async () => { await fx?.close(); });

async function done(page) {
  assert.deepEqual(page.problems, [], 'the page logged no errors (a CSP violation would show here)');
  assert.doesNotMatch(await page.textContent('body'), /\b(null|undefined|NaN|\[object Object\])\b/, 'no placeholder leaks into the page');
  await page.context().close();
}

describe('web UI', () => {
  it('finds an entity by prefix and opens its timeline', async () => {
    const page = await openPage(fx, '#/');
    await page.waitForSelector('ul.streams');
    await shot(page, 'find');
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'q', '/ focuses the search box');
    await page.keyboard.type('friend-');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.hash.startsWith('#/find?q=friend-'));
    await page.waitForSelector('h1:has-text("friend-") ~ .results ul.streams');
    const names = await page.locator('ul.streams a.stream').allTextContents();
    assert.deepEqual(names.sort(), ['friend-1', 'friend-2']);
    await page.click('ul.streams a.stream:text-is("friend-1")');
    await page.waitForSelector('li.tl-event');
    assert.equal(await page.evaluate(() => location.hash), '#/stream/friend-1');
    assert.equal(await page.locator('li.tl-event').count(), 3);
    // An event by its id.
    const ev = (await fx.http('GET', '/v1/streams/friend-2')).json.events[0];
    await page.fill('#q', ev.id);
    await page.press('#q', 'Enter');
    await page.waitForSelector(`.results .event[data-position="${ev.position}"]`);
    assert.equal(await page.textContent('.results .event a.stream'), 'friend-2');
    await done(page);
  });

  it('shows each change with who, why and the backdated correction', async () => {
    const page = await openPage(fx, '#/stream/friend-1');
    await page.waitForSelector('li.tl-event');
    await shot(page, 'timeline');
    const rev2 = page.locator('li.tl-event[data-revision="2"]');
    assert.equal(await rev2.locator('.actor').textContent(), 'ross');
    assert.match(await rev2.locator('.reason').textContent(), /forgot to record her job/);
    assert.match(await rev2.locator('.backdated').textContent(), /backdated: valid from .* recorded /);
    assert.equal(await rev2.locator('ul.patch .new').textContent(), '"buyer"');
    const rev1 = page.locator('li.tl-event[data-revision="1"]');
    assert.equal(await rev1.locator('.actor').textContent(), 'monica');
    assert.equal(await rev1.locator('ul.patch .old').textContent(), '"New York"');
    assert.equal(await rev1.locator('ul.patch .new').textContent(), '"Paris"');
    assert.equal(await rev1.locator('.backdated').count(), 0, 'an ordinary change is not marked');
    assert.equal(await rev1.locator('a.actor').getAttribute('href'), '#/activity?actor=monica', 'the actor links to their activity');
    // A deletion, and an event the document fold ignores (shown with its data).
    await append(fx, 'friend-4', [{ type: '$put', data: { name: 'Gunther' } }]);
    await append(fx, 'friend-4', [{ type: 'coffee-served', data: { cups: 2 } }]);
    await append(fx, 'friend-4', [{ type: '$delete', metadata: { actor: 'gunther', reason: 'moved away' } }]);
    await page.goto(`${fx.url}/ui/#/stream/friend-4`);
    await page.waitForSelector('li.tl-event[data-revision="2"]');
    assert.match(await page.textContent('li.tl-event[data-revision="2"] ul.patch'), /Gunther/);
    assert.equal(await page.locator('li.tl-event[data-revision="2"] ul.patch li.op-remove').count(), 1);
    assert.match(await page.textContent('li.tl-event[data-revision="1"] pre.json'), /"cups":2/);
    assert.match(await page.textContent('p.info'), /deleted/);
    await done(page);
  });

  it('pages through a long timeline (opened by a deep link path)', async () => {
    const page = await openPage(fx, '#/');
    await page.goto(fx.url + '/ui/stream/counter');
    await page.waitForFunction(() => location.pathname === '/ui/' && location.hash === '#/stream/counter');
    await page.waitForSelector('li.tl-event');
    const first = await page.locator('li.tl-event').evaluateAll((els) => els.map((e) => Number(e.dataset.revision)));
    assert.deepEqual(first, Array.from({ length: 20 }, (_, i) => 24 - i), 'the newest 20 events');
    await page.click('.pager a.older');
    await page.waitForFunction(() => document.querySelectorAll('li.tl-event').length === 5);
    const rest = await page.locator('li.tl-event').evaluateAll((els) => els.map((e) => Number(e.dataset.revision)));
    assert.deepEqual(rest, [4, 3, 2, 1, 0]);
    await done(page);
  });

  it('moves through time: revisions, system time and valid time', async () => {
    const page = await openPage(fx, '#/stream/friend-1/state');
    await page.waitForSelector('section.state pre.json');
    assert.match(await page.textContent('section.state pre.json'), /"Paris"/);
    // The slider goes back to the first revision.
    await page.fill('#rev-slider', '0');
    await page.waitForFunction(() => location.hash.includes('at_revision=0') && document.querySelector('section.state pre.json')?.textContent.includes('New York'));
    assert.doesNotMatch(await page.textContent('section.state pre.json'), /buyer/);
    await shot(page, 'state');
    // System time: as of the first event's recording, the state is that of revision 0.
    const first = (await fx.http('GET', '/v1/streams/friend-1?limit=1')).json.events[0];
    await page.fill('#f-as_of', first.recorded_at);
    await page.press('#f-as_of', 'Enter');
    await page.waitForFunction(() => location.hash.includes('as_of='));
    await page.waitForSelector('section.state h2:has-text("as of")');
    assert.match(await page.textContent('section.state pre.json'), /"New York"/);
    // Valid time: the backdated job was already true two hours ago, as known now...
    await page.goto(`${fx.url}/ui/#/stream/friend-1/state?valid_at=${enc(iso(Date.now() - 3600000))}`);
    await page.waitForSelector('section.state h2:has-text("valid at")');
    assert.match(await page.textContent('section.state pre.json'), /"buyer"/);
    // ...but not as known before it was recorded.
    await page.goto(`${fx.url}/ui/#/stream/friend-1/state?valid_at=${enc(iso(Date.now() - 3600000))}&known_at=${enc(first.recorded_at)}`);
    await page.waitForSelector('section.state h2:has-text("as known at")');
    assert.match(await page.textContent('section.state'), /did not exist/);
    assert.equal(await page.locator('section.state pre.json').count(), 0);
    await done(page);
  });

  it('shows the history of one property', async () => {
    const page = await openPage(fx, '#/stream/friend-1/history');
    await page.click('a.chip:text-is("city")');
    await page.waitForSelector('table.history tbody tr');
    await shot(page, 'history');
    const values = await page.locator('table.history td.value').allTextContents();
    assert.deepEqual(values, ['"New York"', '"Paris"']);
    assert.deepEqual(await page.locator('table.history td.actor').allTextContents(), ['joey', 'monica']);
    await done(page);
  });

  it('compares two points side by side', async () => {
    const page = await openPage(fx, '#/stream/friend-1/diff');
    await page.fill('#f-from', '0');
    await page.fill('#f-to', '2');
    await page.press('#f-to', 'Enter');
    await page.waitForFunction(() => location.hash.includes('from=0') && location.hash.includes('to=2'));
    // (The default comparison is on screen until the new one draws: wait for the new one.)
    await page.waitForFunction(() => [...document.querySelectorAll('.sidebyside .pane:nth-child(1) .line.del')]
      .some((l) => l.textContent.includes('New York')));
    await shot(page, 'diff');
    const del = await page.locator('.sidebyside .pane:nth-child(1) .line.del').allTextContents();
    const ins = await page.locator('.sidebyside .pane:nth-child(2) .line.ins').allTextContents();
    assert.ok(del.some((l) => l.includes('"New York"')), `removed lines: ${del}`);
    assert.ok(ins.some((l) => l.includes('"Paris"')) && ins.some((l) => l.includes('"buyer"')), `added lines: ${ins}`);
    assert.equal(await page.locator('ul.patch li').count(), 2);
    assert.equal(await page.locator('ul.list li').count(), 2, 'the two events in between');
    await done(page);
  });

  it('filters activity by actor and pages through it', async () => {
    const page = await openPage(fx, '#/activity');
    await page.waitForSelector('table.activity');
    await page.fill('#f-actor', 'joey');
    await page.press('#f-actor', 'Enter');
    await page.waitForFunction(() => location.hash.includes('actor=joey'));
    // (The old rows go when the view redraws: wait for the new ones, all by joey.)
    await page.waitForFunction(() => {
      const actors = [...document.querySelectorAll('td.actor')].map((td) => td.textContent);
      return actors.length > 0 && actors.every((a) => a === 'joey');
    });
    const streams = await page.locator('table.activity td a.stream').allTextContents();
    assert.deepEqual(streams, ['friend-2', 'friend-1'], 'newest first');
    await shot(page, 'activity');
    // Pages: two at a time through the ticker's events.
    await page.goto(`${fx.url}/ui/#/activity?actor=ticker&limit=2`);
    await page.waitForSelector('table.activity td.reason');
    assert.deepEqual(await page.locator('td.reason').allTextContents(), ['tick 24', 'tick 23']);
    await page.click('.pager a.older');
    await page.waitForFunction(() => document.querySelector('td.reason')?.textContent === 'tick 22');
    assert.deepEqual(await page.locator('td.reason').allTextContents(), ['tick 22', 'tick 21']);
    // j selects a row, Enter opens its stream.
    await page.keyboard.press('j');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.hash === '#/stream/counter');
    await done(page);
  });

  it('shows live events as they arrive, and resumes without loss after a reconnect', async () => {
    const page = await openPage(fx, '#/live?stream_prefix=' + enc('live/'));
    await page.waitForSelector('#live-status.live');
    const a = await append(fx, 'live/1', [{ type: 'ping', data: { n: 1 }, metadata: { actor: 'pinger', reason: 'first' } }]);
    await page.waitForSelector(`#live-events li[data-position="${a.position}"]`);
    await shot(page, 'live');
    // Disconnect, write while away, reconnect: the tail resumes after the last position it saw.
    await page.click('#live-toggle');
    await page.waitForSelector('#live-status.paused');
    const b = await append(fx, 'live/2', [{ type: 'ping', data: { n: 2 } }]);
    const c = await append(fx, 'live/1', [{ type: 'ping', data: { n: 3 } }]);
    await page.click('#live-toggle');
    await page.waitForSelector(`#live-events li[data-position="${c.position}"]`);
    let positions = await page.locator('#live-events li').evaluateAll((els) => els.map((e) => Number(e.dataset.position)));
    assert.deepEqual(positions, [c.position, b.position, a.position], 'each event once, newest first');
    // The server goes away and comes back: the page reconnects by itself, sending the last
    // position it saw as Last-Event-ID, and shows what was written meanwhile exactly once.
    await fx.restart();
    const d = await append(fx, 'live/3', [{ type: 'ping', data: { n: 4 } }]);
    await page.waitForSelector(`#live-events li[data-position="${d.position}"]`, { timeout: 30000 });
    await page.waitForSelector('#live-status.live');
    positions = await page.locator('#live-events li').evaluateAll((els) => els.map((e) => Number(e.dataset.position)));
    assert.deepEqual(positions, [d.position, c.position, b.position, a.position], 'nothing lost or repeated across the restart');
    // A tail can start at any position of the log.
    await page.goto(`${fx.url}/ui/#/live?stream_prefix=${enc('live/')}&from=${b.position}`);
    await page.waitForFunction((want) => JSON.stringify([...document.querySelectorAll('#live-events li')]
      .map((e) => Number(e.dataset.position))) === want, JSON.stringify([d.position, c.position, b.position]));
    await done(page);
  });

  it('reverts with a reason, after showing the change and the expected revision', async () => {
    await append(fx, 'friend-3', [{ type: '$put', data: { name: 'Chandler', job: 'statistics' }, metadata: { actor: 'joey', reason: 'met' } }]);
    await append(fx, 'friend-3', [{ type: '$patch', data: { job: 'advertising' }, metadata: { actor: 'mallory', reason: 'oops' } }]);
    const page = await openPage(fx, '#/stream/friend-3');
    await page.waitForSelector('li.tl-event');
    await page.click('li.tl-event[data-revision="0"] a:text-is("revert to here")');
    await page.waitForSelector('section.revert');
    assert.equal(await page.textContent('#expected'), '1');
    assert.equal(await page.locator('section.revert ul.patch .old').textContent(), '"advertising"');
    assert.equal(await page.locator('section.revert ul.patch .new').textContent(), '"statistics"');
    await page.fill('#reason', 'undo the mistaken job change');
    await shot(page, 'revert');
    await page.click('#do-revert');
    await page.waitForSelector('.flash');
    await page.waitForSelector('li.tl-event[data-revision="2"]');
    const rev2 = page.locator('li.tl-event[data-revision="2"]');
    assert.match(await rev2.locator('.reason').textContent(), /undo the mistaken job change/);
    assert.equal(await rev2.locator('ul.patch .new').textContent(), '"statistics"');
    const now = (await fx.http('GET', '/v1/entities/friend-3')).json;
    assert.deepEqual(now.state, { name: 'Chandler', job: 'statistics' });
    assert.equal(now.revision, 2);
    await done(page);
  });

  it('shows the integrity head and verifies for an admin', async () => {
    const page = await openPage(fx, '#/integrity');
    await page.waitForSelector('#head-position');
    const head = (await fx.http('GET', '/v1/integrity')).json;
    assert.ok(Number(await page.textContent('#head-position')) >= head.position);
    await page.click('#verify');
    await page.waitForSelector('#verify-result .verify.ok');
    assert.match(await page.textContent('#verify-result'), /OK \d+ events checked/);
    await page.waitForSelector('#last-verify .verify.ok');
    await shot(page, 'integrity');
    await done(page);
  });

  it('respects a read-only token limited to a prefix', async () => {
    const page = await openPage(fx, '#/stream/friend-1', fx.tokens.reader);
    await page.waitForSelector('.error');
    assert.equal(await page.getAttribute('.error', 'data-status'), '403');
    assert.match(await page.textContent('.error .title'), /Forbidden/);
    // Find lists only within the token's prefix.
    await page.goto(`${fx.url}/ui/#/find?q=${enc('acme/')}`);
    await page.waitForSelector('ul.streams');
    assert.deepEqual(await page.locator('ul.streams a.stream').allTextContents(), ['acme/order-1']);
    await page.goto(`${fx.url}/ui/#/stream/${enc('acme/order-1')}`);
    await page.waitForSelector('li.tl-event');
    // Reading is allowed; what the token may not do is not offered (GET /v1/whoami says so).
    assert.deepEqual(await page.locator('nav.tabs a').allTextContents(), ['Timeline', 'State', 'Property history', 'Diff']);
    await page.goto(`${fx.url}/ui/#/stream/${enc('acme/order-1')}/revert?to=0`);
    await page.waitForSelector('#revert-not-allowed');
    assert.equal(await page.locator('#do-revert').count(), 0);
    await page.goto(`${fx.url}/ui/#/integrity`);
    await page.waitForSelector('#verify-not-allowed');
    assert.equal(await page.locator('button#verify').count(), 0);
    await page.context().close();
  });

  it('asks for a token when the server needs one', async () => {
    const page = await openPage(fx, '#/activity', null);
    await page.waitForSelector('.error');
    assert.equal(await page.textContent('.error .title'), 'Sign in needed');
    assert.ok(await page.isVisible('#token'), 'the sign-in box is open');
    await page.fill('#token', fx.tokens.admin);
    await page.press('#token', 'Enter');
    await page.waitForSelector('table.activity');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('timetrail.token')), fx.tokens.admin);
    await done(page);
  });

  it('says so when the token has expired', async () => {
    await until(async () => (await fx.http('GET', '/v1/integrity', undefined, fx.tokens.expiring)).status === 401,
      'the short-lived token to expire');
    const page = await openPage(fx, '#/integrity', fx.tokens.expiring);
    await page.waitForSelector('.error');
    assert.equal(await page.textContent('.error .title'), 'Token expired');
    assert.match(await page.textContent('.error .message'), /expired at/);
    assert.equal(await page.getAttribute('.error', 'data-status'), '401');
    assert.equal(await page.textContent('#auth-state'), 'expired', 'the header says so too');
    await shot(page, 'expired');
    await page.context().close();
  });

  it('fits a phone screen', async () => {
    const page = await openPage(fx, '#/stream/friend-1', fx.tokens.admin, { width: 390, height: 844 });
    await page.waitForSelector('li.tl-event');
    await shot(page, 'phone');
    const views = [['#/stream/friend-1', 'li.tl-event'], ['#/stream/friend-1/state', 'section.state'],
      ['#/stream/friend-1/diff?from=0&to=2', '.sidebyside'], ['#/stream/friend-1/history?path=%2Fcity', 'table.history'],
      ['#/activity', 'table.activity'], ['#/live', '#live-status'], ['#/integrity', '#head-position'], ['#/', 'ul.streams']];
    for (const [hash, ready] of views) {
      await page.goto(`${fx.url}/ui/${hash}`);
      await page.waitForSelector(ready);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${hash}: no horizontal scrolling on a phone (overflow ${overflow}px)`);
    }
    await done(page);
  });
});
