<?php
// SPDX-License-Identifier: MIT
/*
 * driver.php - the PHP client's conformance driver (tests/conformance/
 * DRIVER.md): `driver.php caller` answers JSON commands from stdin with
 * Ferry\Client and Ferry\Codec; `driver.php worker --addr A --service S
 * --credit N ...` serves with Ferry\Worker and reports events. Errors are
 * reported from the exception's own getErrorName() / getCode().
 */

declare(strict_types=1);

require dirname(__DIR__) . '/autoload.php';

use Ferry\Call;
use Ferry\Client;
use Ferry\Codec;
use Ferry\ErrorCode;
use Ferry\Exception\InvalidArgumentException;
use Ferry\Exception\WorkerErrorException;
use Ferry\FerryException;
use Ferry\Frame;
use Ferry\Job;
use Ferry\WaitTimeoutException;
use Ferry\Worker;

function out(array $msg): void
{
    fwrite(STDOUT, json_encode($msg, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE) . "\n");
    fflush(STDOUT);
}

function failure(FerryException $e): array
{
    return ['ok' => false, 'error' => $e->getErrorName(), 'code' => $e->getCode(),
            'message' => $e->getMessage(), 'class' => get_class($e)];
}

function gen(int $size, int $seed): string
{
    $s = '';
    for ($i = 0; $i < $size; $i++) {
        $s .= chr(($i * 7 + $seed) % 251);
    }
    return $s;
}

/** The payload of a call command and, for payload_gen, the bytes expected back. */
function payload(array $cmd): array
{
    if (isset($cmd['payload_gen'])) {
        $p = gen((int)$cmd['payload_gen']['size'], (int)($cmd['payload_gen']['seed'] ?? 0));
        return [$p, true];
    }
    return [(string)hex2bin($cmd['payload_hex'] ?? ''), false];
}

function callOptions(array $cmd): array
{
    $o = [];
    if (isset($cmd['deadline_ms'])) {
        $o['deadline_ms'] = (int)$cmd['deadline_ms'];
    }
    if (isset($cmd['key_hex'])) {
        $o['key'] = (string)hex2bin($cmd['key_hex']);
    }
    if (!empty($cmd['idempotent'])) {
        $o['idempotent'] = true;
    }
    return $o;
}

function replyAnswer(string $reply, bool $gen, string $payload): array
{
    if ($gen) {
        return ['ok' => true, 'reply_len' => strlen($reply), 'echo_ok' => $reply === $payload];
    }
    return ['ok' => true, 'reply_hex' => bin2hex($reply)];
}

function fieldsOf(Frame $f): array
{
    $x = $f->fields;
    switch ($f->type) {
        case Frame::REQUEST:
            return ['deadline_ms' => $x['deadline_ms'], 'service' => $x['service'],
                    'key_hex' => bin2hex($x['key']), 'payload_hex' => bin2hex($x['payload'])];
        case Frame::REPLY:
            return ['payload_hex' => bin2hex($x['payload'])];
        case Frame::ERROR:
            return ['code' => $x['code'], 'code_name' => ErrorCode::name($x['code']), 'message' => $x['message']];
        default:
            if (isset($x['trailing'])) {
                $x['trailing_hex'] = bin2hex($x['trailing']);
                unset($x['trailing']);
            }
            return $x;
    }
}

/** Reads the next command line, driving the client while stdin is quiet. */
function nextLine(?Client $client, string &$inbuf): ?string
{
    for (;;) {
        $nl = strpos($inbuf, "\n");
        if ($nl !== false) {
            $line = substr($inbuf, 0, $nl);
            $inbuf = (string)substr($inbuf, $nl + 1);
            return $line;
        }
        $r = [STDIN];
        $w = $e = null;
        $n = @stream_select($r, $w, $e, 0, 20000);
        if ($n > 0) {
            $chunk = fread(STDIN, 65536);
            if ($chunk === false || ($chunk === '' && feof(STDIN))) {
                return $inbuf !== '' ? $inbuf . ($inbuf = '') : null;
            }
            $inbuf .= $chunk;
            continue;
        }
        // Heartbeats and calls left in flight make progress between commands.
        $client?->poll(0);
    }
}

final class BadCommand extends \RuntimeException
{
}

function caller(): int
{
    $client = null;
    /** @var array<string, array{0: Call, 1: bool, 2: string}> $tags */
    $tags = [];
    stream_set_blocking(STDIN, false);
    $inbuf = '';
    while (($line = nextLine($client, $inbuf)) !== null) {
        $line = trim($line);
        if ($line === '') {
            continue;
        }
        $cmd = json_decode($line, true);
        if (!is_array($cmd)) {
            out(['ok' => false, 'error' => 'BAD_COMMAND', 'message' => 'not a JSON object']);
            continue;
        }
        $op = $cmd['op'] ?? '';
        try {
            switch ($op) {
                case 'decode':
                    $bin = (string)hex2bin($cmd['hex']);
                    $r = Codec::decode($bin, (int)($cmd['max_frame'] ?? Codec::DEFAULT_MAX_BODY));
                    if ($r === null) {
                        out(['ok' => false, 'error' => 'INCOMPLETE', 'message' => 'more bytes needed']);
                        break;
                    }
                    [$f] = $r;
                    $fields = fieldsOf($f);
                    out(['ok' => true, 'type' => $f->typeName(), 'flags' => $f->flags,
                         'id' => Codec::idToString($f->id), 'fields' => $fields === [] ? new stdClass() : $fields]);
                    break;
                case 'encode':
                    $type = array_search($cmd['type'] ?? '', Frame::NAMES, true);
                    if ($type === false) {
                        throw new BadCommand("unknown frame type '" . ($cmd['type'] ?? '') . "'");
                    }
                    $bytes = Codec::encodeFields($type, (int)($cmd['flags'] ?? 0),
                                                 Codec::idFromString((string)($cmd['id'] ?? '0')),
                                                 (array)($cmd['fields'] ?? []));
                    out(['ok' => true, 'hex' => bin2hex($bytes)]);
                    break;
                case 'connect':
                    $client?->close();
                    $client = null;
                    $tags = [];
                    $opts = ['persistent' => getenv('FERRY_PHP_PERSISTENT') !== '0', 'token' => ''];
                    foreach (['token', 'name', 'heartbeat_ms', 'max_frame'] as $k) {
                        if (isset($cmd[$k])) {
                            $opts[$k] = $cmd[$k];
                        }
                    }
                    $c = new Client($cmd['addr'] ?? null, $opts);
                    $c->connect();
                    $client = $c;
                    out(['ok' => true]);
                    break;
                case 'call':
                    [$p, $gen] = payload($cmd);
                    out(replyAnswer(need($client)->call($cmd['service'], $p, callOptions($cmd)), $gen, $p));
                    break;
                case 'send':
                    $tag = (string)($cmd['tag'] ?? '');
                    if (isset($tags[$tag])) {
                        throw new BadCommand("tag '$tag' is busy");
                    }
                    [$p, $gen] = payload($cmd);
                    $tags[$tag] = [need($client)->send($cmd['service'], $p, callOptions($cmd)), $gen, $p];
                    out(['ok' => true]);
                    break;
                case 'cancel':
                    need($client)->cancel(tagged($tags, $cmd)[0]);
                    out(['ok' => true]);
                    break;
                case 'await':
                    [$call, $gen, $p] = tagged($tags, $cmd);
                    try {
                        $reply = need($client)->wait($call, (int)($cmd['timeout_ms'] ?? 30000));
                    } catch (WaitTimeoutException $e) {
                        out(['ok' => false, 'error' => 'HUNG', 'message' => $e->getMessage()]);
                        break;
                    } catch (FerryException $e) {
                        unset($tags[$cmd['tag']]);
                        throw $e;
                    }
                    unset($tags[$cmd['tag']]);
                    out(replyAnswer($reply, $gen, $p));
                    break;
                case 'pipeline':
                    $n = (int)$cmd['count'];
                    $size = (int)$cmd['payload_size'];
                    $calls = [];
                    $o = isset($cmd['deadline_ms']) ? ['deadline_ms' => (int)$cmd['deadline_ms']] : [];
                    for ($i = 0; $i < $n; $i++) {
                        $calls[$i] = [$cmd['service'], str_pad((string)$i, $size, 'x'), $o];
                    }
                    $replied = 0;
                    $mismatched = 0;
                    $errors = [];
                    foreach (need($client)->callMany($calls) as $i => $r) {
                        if ($r instanceof FerryException) {
                            $errors[$r->getErrorName()] = ($errors[$r->getErrorName()] ?? 0) + 1;
                        } else {
                            $replied++;
                            $mismatched += $r === $calls[$i][1] ? 0 : 1;
                        }
                    }
                    out(['ok' => true, 'replied' => $replied, 'mismatched' => $mismatched,
                         'errors' => $errors === [] ? new stdClass() : $errors]);
                    break;
                case 'stats':
                    out(['ok' => true, 'connects' => need($client)->connects()]);
                    break;
                case 'servant':
                    out(['ok' => true] + servant(need($client), $cmd));
                    break;
                case 'cluster':
                    out(['ok' => true] + need($client)->cluster());
                    break;
                case 'close':
                    $client?->close();
                    $client = null;
                    $tags = [];
                    out(['ok' => true]);
                    break;
                case 'quit':
                    $client?->close();
                    out(['ok' => true]);
                    return 0;
                default:
                    throw new BadCommand("unknown op '$op'");
            }
        } catch (FerryException $e) {
            out(failure($e));
        } catch (BadCommand $e) {
            out(['ok' => false, 'error' => 'BAD_COMMAND', 'message' => $e->getMessage()]);
        } catch (\Throwable $e) {
            out(['ok' => false, 'error' => 'BAD_COMMAND', 'message' => get_class($e) . ': ' . $e->getMessage()]);
        }
    }
    return 0;
}

// ------------------------------------------------------------ servants

function svItem(?array $i): array
{
    return $i === null ? ['status' => 'NOT_FOUND']
        : ['status' => 'OK', 'flags' => $i['flags'], 'cas' => (string)$i['cas'], 'value_hex' => bin2hex($i['value'])];
}

function svEntry(array $e, bool $withKey = true): array
{
    return ($withKey ? ['key_hex' => bin2hex($e['key'])] : []) + ['create_rev' => (string)$e['create_rev'],
        'mod_rev' => (string)$e['mod_rev'], 'version' => (string)$e['version'], 'value_hex' => bin2hex($e['value'])];
}

function svPeekEntry(array $e): array
{
    return ['id' => (string)$e['id'], 'attempts' => $e['attempts'], 'priority' => $e['priority'],
        'state' => $e['state'], 'age_ms' => (string)$e['age_ms'], 'reason_hex' => bin2hex($e['reason']),
        'payload_hex' => bin2hex($e['payload'])];
}

/** DRIVER.md's queue.* servant calls through $client->queue(); null for an unknown one. */
function svQueue(Ferry\Servants\Queue $h, string $op, array $a, array $o): ?array
{
    $queue = (string)($a['queue'] ?? '');
    $id = $a['id'] ?? '0';
    $token = $a['token'] ?? '0';
    $opts = $o;
    foreach (['priority', 'delay_ms', 'visibility_ms', 'max_deliveries', 'wait_ms', 'backoff', 'which',
                 'limit'] as $k) {
        if (isset($a[$k])) {
            $opts[$k] = $a[$k];
        }
    }
    if (isset($a['dedup_hex'])) {
        $opts['dedup'] = hex2bin($a['dedup_hex']);
    }
    $nf = ['status' => 'NOT_FOUND'];
    switch ($op) {
        case 'push':
            $p = $h->push($queue, (string)hex2bin($a['payload_hex'] ?? ''), $opts);
            return ['status' => 'OK', 'id' => (string)$p['id'], 'dup' => $p['dup']];
        case 'reserve':
            $j = $h->reserve($queue, $opts);
            return $j === null ? ['status' => 'EMPTY'] : ['status' => 'OK', 'id' => (string)$j['id'],
                'token' => (string)$j['token'], 'attempts' => $j['attempts'], 'priority' => $j['priority'],
                'payload_hex' => bin2hex($j['payload'])];
        case 'ack':
            return $h->ack($queue, $id, $token, $o);
        case 'release':
            return $h->release($queue, $id, $token, $opts);
        case 'touch':
            $t = $h->touch($queue, $id, $token, $opts);
            return $t['status'] === 'OK' ? $t : ['status' => $t['status']];
        case 'bury':
            return $h->bury($queue, $id, $token, (string)hex2bin($a['reason_hex'] ?? ''), $o);
        case 'peek':
            $es = $h->peek($queue, $opts);
            return $es === null ? $nf : ['status' => 'OK', 'entries' => array_map('svPeekEntry', $es)];
        case 'stats':
            $st = $h->stats(isset($a['queue']) ? $queue : null, $o);
            return $st === null ? $nf : ['status' => 'OK', 'stats' => $st];
        case 'redrive':
            $n = $h->redrive($queue, $opts);
            return $n === null ? $nf : ['status' => 'OK', 'moved' => (string)$n];
        case 'purge':
            $n = $h->purge($queue, $o);
            return $n === null ? $nf : ['status' => 'OK', 'removed' => (string)$n];
        case 'pause':
        case 'resume':
        case 'delete':
            return ['status' => $h->$op($queue, $o) ? 'OK' : 'NOT_FOUND'];
        case 'configure':
            $st = $h->configure($queue, $a['settings'] ?? [], $o);
            return $st === null ? $nf : ['status' => 'OK', 'settings' => $st];
    }
    return null;
}

/** DRIVER.md's topic.* servant calls through $client->topic(); null for an unknown one. */
function svTopic(Ferry\Servants\Topic $h, string $op, array $a, array $o): ?array
{
    $sub = $a['sub_id'] ?? null;
    $opts = $o;
    foreach (['group', 'max_pending', 'policy', 'wait_ms', 'max_msgs'] as $k) {
        if (isset($a[$k])) {
            $opts[$k] = $a[$k];
        }
    }
    $nf = ['status' => 'NOT_FOUND'];
    switch ($op) {
        case 'publish':
            $n = $h->publish((string)($a['subject'] ?? ''), (string)hex2bin($a['message_hex'] ?? ''), $o);
            return ['status' => 'OK', 'receivers' => $n];
        case 'subscribe':
            return ['status' => 'OK', 'sub_id' => (string)$h->subscribe((string)($a['pattern'] ?? ''), $opts)];
        case 'poll':
            $got = $h->poll($sub ?? '0', $opts);
            if ($got === null) {
                return $nf;
            }
            if ($got['messages'] === []) {
                return ['status' => 'EMPTY', 'dropped' => (string)$got['dropped']];
            }
            return ['status' => 'OK', 'dropped' => (string)$got['dropped'], 'messages' => array_map(
                fn($m) => ['seq' => (string)$m['seq'], 'subject' => $m['subject'],
                    'payload_hex' => bin2hex($m['payload'])], $got['messages'])];
        case 'unsubscribe':
            return ['status' => $h->unsubscribe($sub ?? '0', $o) ? 'OK' : 'NOT_FOUND'];
        case 'stats':
            $st = $h->stats($sub, $o);
            return $st === null ? $nf : ['status' => 'OK', 'stats' => $st];
    }
    return null;
}

/** DRIVER.md's servant command through $client->cache() / kv() / id() / queue() / topic(). */
function servant(Client $c, array $cmd): array
{
    [$service, $op] = explode('.', (string)($cmd['call'] ?? '')) + ['', ''];
    $a = $cmd['args'] ?? [];
    $o = isset($cmd['deadline_ms']) ? ['deadline_ms' => $cmd['deadline_ms']] : [];
    $key = hex2bin($a['key_hex'] ?? '');
    $value = hex2bin($a['value_hex'] ?? '');
    if ($service === 'cache') {
        $h = $c->cache();
        $store = $o + ['flags' => $a['flags'] ?? 0, 'ttl_ms' => $a['ttl_ms'] ?? 0];
        switch ($op) {
            case 'get':
                return svItem($h->get($key, $o));
            case 'gat':
                return svItem($h->gat($key, $a['ttl_ms'] ?? 0, $o));
            case 'get_many':
                return ['status' => 'OK', 'items' => array_map('svItem',
                    $h->getMany(array_map('hex2bin', $a['keys_hex'] ?? []), $o))];
            case 'set':
            case 'add':
            case 'replace':
                $w = $h->$op($key, $value, $store);
                return $w['status'] === 'OK' ? ['status' => 'OK', 'cas' => (string)$w['cas']] : ['status' => $w['status']];
            case 'append':
            case 'prepend':
                $w = $h->$op($key, $value, $o);
                return $w['status'] === 'OK' ? ['status' => 'OK', 'cas' => (string)$w['cas']] : ['status' => $w['status']];
            case 'cas':
                $w = $h->cas($key, $value, $a['cas'] ?? '0', $store);
                return $w['status'] === 'OK' ? ['status' => 'OK', 'cas' => (string)$w['cas']] : ['status' => $w['status']];
            case 'incr':
            case 'decr':
                $v = $h->$op($key, $a['delta'] ?? '1', $o);
                return $v === null ? ['status' => 'NOT_FOUND'] : ['status' => 'OK', 'value' => (string)$v];
            case 'delete':
                return ['status' => $h->delete($key, $o) ? 'OK' : 'NOT_FOUND'];
            case 'touch':
                return ['status' => $h->touch($key, $a['ttl_ms'] ?? 0, $o) ? 'OK' : 'NOT_FOUND'];
            case 'flush':
                $h->flush($a['delay_ms'] ?? 0, $o);
                return ['status' => 'OK'];
        }
    } elseif ($service === 'kv') {
        $h = $c->kv();
        $kvo = $o;
        if (isset($a['end_hex'])) {
            $kvo['end'] = hex2bin($a['end_hex']);
        }
        if (($a['cond'] ?? 'any') === 'mod_rev') {
            $kvo['if_mod_rev'] = $a['rev'] ?? '0';
        }
        switch ($op) {
            case 'get':
                $g = $h->getRev($key, $o);
                return ['status' => $g['entry'] ? 'OK' : 'NOT_FOUND', 'rev' => (string)$g['rev']]
                    + ($g['entry'] ? svEntry($g['entry'], false) : []);
            case 'put':
                $w = $h->put($key, $value, $kvo + ['if_absent' => ($a['cond'] ?? '') === 'absent']);
                return ['status' => $w['status'], 'rev' => (string)$w['rev']];
            case 'delete':
                $w = $h->delete($key, $kvo);
                return ['status' => $w['status'], 'rev' => (string)$w['rev']];
            case 'range':
                $r = $h->range($key, $kvo + ['limit' => $a['limit'] ?? 0, 'keys_only' => !empty($a['keys_only'])]);
                return ['status' => 'OK', 'rev' => (string)$r['rev'], 'more' => $r['more'],
                    'items' => array_map('svEntry', $r['items'])];
            case 'count':
                return ['status' => 'OK', 'count' => (string)$h->count($key, $kvo)];
            case 'watch':
                $w = $h->watch($key, $o + ['prefix' => !empty($a['prefix']), 'from_rev' => $a['from_rev'] ?? 0,
                    'wait_ms' => $a['wait_ms'] ?? 0, 'max_events' => $a['max_events'] ?? 0]);
                return ['status' => 'OK', 'rev' => (string)$w['rev'],
                    'events' => array_map(fn($e) => ['type' => $e['type']] + svEntry($e), $w['events'])];
        }
    } elseif ($service === 'topic') {
        $r = svTopic($c->topic(), $op, $a, $o);
        if ($r !== null) {
            return $r;
        }
    } elseif ($service === 'queue') {
        $r = svQueue($c->queue(), $op, $a, $o);
        if ($r !== null) {
            return $r;
        }
    } elseif ($service === 'id') {
        if ($op === 'next') {
            return ['status' => 'OK', 'ids' => array_map('strval', $c->id()->next($a['count'] ?? 1, $o))];
        }
        if ($op === 'decode') {
            $p = $c->id()->decode($a['id'] ?? 0, $o);
            return ['status' => 'OK', 'unix_ms' => (string)$p['unix_ms'], 'node' => $p['node'], 'seq' => $p['seq']];
        }
    }
    throw new BadCommand("unknown servant call '" . ($cmd['call'] ?? '') . "'");
}

function tagged(array $tags, array $cmd): array
{
    $tag = (string)($cmd['tag'] ?? '');
    if (!isset($tags[$tag])) {
        throw new BadCommand("unknown tag '$tag'");
    }
    return $tags[$tag];
}

function need(?Client $c): Client
{
    if ($c === null) {
        throw new BadCommand('no client yet (send connect first)');
    }
    return $c;
}

function worker(array $argv): int
{
    $addr = null;
    $services = [];
    $opts = ['token' => ''];
    $name = 'php-conformance';
    for ($i = 0; $i < count($argv); $i++) {
        $a = $argv[$i];
        $v = $argv[$i + 1] ?? null;
        if ($v === null) {
            fwrite(STDERR, "driver.php: $a needs a value\n");
            return 2;
        }
        $i++;
        switch ($a) {
            case '--addr':
                $addr = $v;
                break;
            case '--service':
                $services[] = [$v, 1];
                break;
            case '--credit':
                $services[count($services) - 1][1] = (int)$v;
                break;
            case '--token':
                $opts['token'] = $v;
                break;
            case '--name':
                $name = $v;
                break;
            case '--heartbeat-ms':
                $opts['heartbeat_ms'] = (int)$v;
                break;
            default:
                fwrite(STDERR, "driver.php: unknown option $a\n");
                return 2;
        }
    }
    $opts['name'] = $name;
    $w = new Worker($addr, $opts);
    $hanging = [];
    $handler = static function (Job $job) use ($w, $name, &$hanging): ?string {
        $p = $job->payload;
        if (str_starts_with($p, 'sleep:')) {
            $parts = explode(':', $p, 3);
            $rest = $parts[2] ?? '';
            $t = $w->after((int)$parts[1], static fn () => $job->reply($rest));
            $job->onCancel(static fn () => $w->cancelTimer($t));
            return null;
        }
        if (str_starts_with($p, 'fail:')) {
            throw new WorkerErrorException(substr($p, 5));
        }
        if (str_starts_with($p, 'invalid:')) {
            throw new InvalidArgumentException(substr($p, 8));
        }
        if ($p === 'hang') {
            $hanging[$job->id] = $job; // never answered; not waited for at a graceful stop
            return null;
        }
        if ($p === 'exit') {
            exit(3);
        }
        if ($p === 'name') {
            return $name;
        }
        if (str_starts_with($p, 'size:')) {
            return str_repeat('x', (int)substr($p, 5));
        }
        return $p;
    };
    try {
        foreach ($services as [$s, $credit]) {
            $w->register($s, $handler, $credit);
        }
    } catch (FerryException $e) {
        out(['event' => 'failed', 'error' => $e->getErrorName(), 'code' => $e->getCode(),
             'message' => $e->getMessage()]);
        return 1;
    }
    $w->on('ready', static fn () => out(['event' => 'ready']));
    $w->on('start', static fn (Job $j) => out(['event' => 'start', 'id' => $j->idString(),
                                                'service' => $j->service,
                                                'payload_hex' => bin2hex(substr($j->payload, 0, 1024)),
                                                'payload_len' => strlen($j->payload), 'held' => $w->held()]));
    $w->on('stopping', static function () use (&$hanging): void {
        foreach ($hanging as $job) {
            $job->abandon();
        }
        $hanging = [];
    });
    $w->on('cancel', static fn (Job $j) => out(['event' => 'cancel', 'id' => $j->idString()]));
    $w->on('end', static fn (Job $j) => out(['event' => 'end', 'id' => $j->idString(), 'held' => $w->held()]));
    $w->on('disconnect', static fn (FerryException $e) => fwrite(STDERR, 'driver.php: ' . $e->getMessage() . "\n"));
    try {
        $handled = $w->run();
    } catch (FerryException $e) {
        out(['event' => 'failed', 'error' => $e->getErrorName(), 'code' => $e->getCode(),
             'message' => $e->getMessage()]);
        return 1;
    }
    out(['event' => 'exit', 'handled' => $handled]);
    return 0;
}

$mode = $argv[1] ?? '';
if ($mode === 'caller') {
    exit(caller());
}
if ($mode === 'worker') {
    exit(worker(array_slice($argv, 2)));
}
fwrite(STDERR, "usage: driver.php caller | driver.php worker --addr A --service S --credit N ...\n");
exit(2);
