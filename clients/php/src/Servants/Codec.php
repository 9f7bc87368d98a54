<?php
// SPDX-License-Identifier: MIT
/*
 * Servants/Codec.php - the payloads of ferryd's built-in services
 * ferry.cache, ferry.kv and ferry.id (docs/services.md), ferry.queue
 * (docs/queues.md) and ferry.topic (docs/topics.md): encode a request to
 * [routing key, payload], decode a
 * reply to plain arrays, every length checked first (a malformed reply:
 * InvalidArgumentException). A u64 is an int, or a decimal string when
 * above PHP_INT_MAX (a cas, an incr value or a queue's token may be; ids,
 * revisions and versions never are); encoders take either. Tested against
 * tests/vectors/client_payloads.json.
 */

declare(strict_types=1);

namespace Ferry\Servants;

use Ferry\Exception\InvalidArgumentException;

final class Codec
{
    public const CACHE = 'ferry.cache';
    public const KV = 'ferry.kv';
    public const ID = 'ferry.id';
    public const STATUS = ['OK', 'NOT_FOUND', 'NOT_STORED', 'EXISTS'];
    public const CACHE_OPS = ['get' => 1, 'get_many' => 2, 'set' => 3, 'add' => 4, 'replace' => 5,
        'append' => 6, 'prepend' => 7, 'cas' => 8, 'delete' => 9, 'incr' => 10, 'decr' => 11,
        'touch' => 12, 'gat' => 13, 'flush' => 14];
    public const KV_OPS = ['get' => 1, 'put' => 2, 'delete' => 3, 'range' => 4, 'count' => 5, 'watch' => 6];
    public const COND = ['any' => 0, 'absent' => 1, 'mod_rev' => 2];
    public const QUEUE = 'ferry.queue';
    public const QUEUE_STATUS = ['OK', 'EMPTY', 'STALE', 'NOT_FOUND'];
    public const QUEUE_OPS = ['push' => 1, 'reserve' => 2, 'ack' => 3, 'release' => 4, 'touch' => 5,
        'bury' => 6, 'peek' => 7, 'stats' => 8, 'redrive' => 9, 'pause' => 10, 'resume' => 11,
        'purge' => 12, 'delete' => 13, 'configure' => 14];
    public const PEEK_WHICH = ['ready' => 0, 'delayed' => 1, 'dead' => 2, 'reserved' => 3];
    public const JOB_STATES = ['ready', 'delayed', 'reserved'];
    /** RELEASE's delay that means "by the queue's backoff_ms". */
    public const RELEASE_BACKOFF = 0xffffffff;
    public const TOPIC = 'ferry.topic';
    /** ferry.queue's values; 2 (STALE) is no answer of ferry.topic. */
    public const TOPIC_STATUS = ['OK', 'EMPTY', 'STALE', 'NOT_FOUND'];
    public const TOPIC_OPS = ['publish' => 1, 'subscribe' => 2, 'poll' => 3, 'unsubscribe' => 4, 'stats' => 5];
    public const TOPIC_POLICY = ['drop_oldest' => 0, 'close' => 1];

    private static function num(int $v, int $bits, string $what): int
    {
        if ($v < 0 || ($bits < 64 && $v >= (1 << $bits))) {
            throw new InvalidArgumentException("$what must be an integer from 0 to " . ((1 << $bits) - 1));
        }
        return $v;
    }

    /** 8 big-endian bytes of an int or decimal string from 0 to 2^64-1. */
    public static function u64(int|string $v, string $what = 'value'): string
    {
        if (is_int($v)) {
            return pack('J', self::num($v, 64, $what));
        }
        if (!preg_match('/^[0-9]{1,20}$/', $v)) {
            throw new InvalidArgumentException("$what must be a decimal from 0 to 18446744073709551615");
        }
        $hi = 0;
        $lo = 0;
        for ($i = 0, $n = strlen($v); $i < $n; $i++) {
            $lo = $lo * 10 + (ord($v[$i]) - 48);
            $hi = $hi * 10 + ($lo >> 32);
            $lo &= 0xffffffff;
            if ($hi > 0xffffffff) {
                throw new InvalidArgumentException("$what must be a decimal from 0 to 18446744073709551615");
            }
        }
        return pack('NN', $hi, $lo);
    }

    /** An unpacked 'J' as int, or as a decimal string when above PHP_INT_MAX. */
    public static function unsigned(int $v): int|string
    {
        return $v >= 0 ? $v : sprintf('%u', $v);
    }

    /** @return array{0: string, 1: string} [routing key, payload] */
    public static function encodeCache(string $op, array $a = []): array
    {
        $code = self::CACHE_OPS[$op] ?? throw new InvalidArgumentException("unknown ferry.cache op $op");
        $key = (string)($a['key'] ?? '');
        $value = (string)($a['value'] ?? '');
        $p = chr($code);
        $u32 = static fn(string $k): string => pack('N', self::num((int)($a[$k] ?? 0), 32, $k));
        switch ($op) {
            case 'get':
            case 'delete':
                break;
            case 'get_many':
                $keys = $a['keys'] ?? [];
                $p .= pack('n', self::num(count($keys), 16, 'keys'));
                foreach ($keys as $k) {
                    $p .= pack('n', self::num(strlen((string)$k), 16, 'key length')) . $k;
                }
                $key = '';
                break;
            case 'set':
            case 'add':
            case 'replace':
                $p .= $u32('flags') . $u32('ttl_ms') . $value;
                break;
            case 'append':
            case 'prepend':
                $p .= $value;
                break;
            case 'cas':
                $p .= $u32('flags') . $u32('ttl_ms') . self::u64($a['cas'] ?? 0, 'cas') . $value;
                break;
            case 'incr':
            case 'decr':
                $p .= self::u64($a['delta'] ?? 1, 'delta');
                break;
            case 'touch':
            case 'gat':
                $p .= $u32('ttl_ms');
                break;
            default: // flush
                $p .= $u32('delay_ms');
                $key = '';
        }
        return [$key, $p];
    }

    /** @return array{0: string, 1: string} */
    public static function encodeKv(string $op, string $key, array $a = []): array
    {
        $code = self::KV_OPS[$op] ?? throw new InvalidArgumentException("unknown ferry.kv op $op");
        $p = chr($code);
        switch ($op) {
            case 'get':
                break;
            case 'put':
            case 'delete':
                $cond = self::COND[$a['cond'] ?? 'any'] ?? throw new InvalidArgumentException(
                    'cond must be any, absent or mod_rev');
                $p .= chr($cond) . self::u64($a['rev'] ?? 0, 'rev');
                if ($op === 'put') {
                    $p .= (string)($a['value'] ?? '');
                }
                break;
            case 'range':
            case 'count':
                $end = $a['end'] ?? null;
                $p .= chr($end === null ? 0 : 1) . pack('n', self::num(strlen((string)$end), 16, 'end length'))
                    . $end;
                if ($op === 'range') {
                    $p .= pack('N', self::num((int)($a['limit'] ?? 0), 32, 'limit'))
                        . chr(empty($a['keys_only']) ? 0 : 1);
                }
                break;
            default: // watch
                $p .= chr(empty($a['prefix']) ? 0 : 1) . self::u64($a['from_rev'] ?? 0, 'from_rev')
                    . pack('N', self::num((int)($a['wait_ms'] ?? 0), 32, 'wait_ms'))
                    . pack('N', self::num((int)($a['max_events'] ?? 0), 32, 'max_events'));
        }
        return [$key, $p];
    }

    /** @return array{0: string, 1: string} */
    public static function encodeId(string $op, array $a = []): array
    {
        if ($op === 'next') {
            return ['', "\x01" . pack('N', self::num((int)($a['count'] ?? 1), 32, 'count'))];
        }
        if ($op === 'decode') {
            return ['', "\x02" . self::u64($a['id'] ?? 0, 'id')];
        }
        throw new InvalidArgumentException("unknown ferry.id op $op");
    }

    /**
     * get/gat: ['value', 'flags', 'cas'] or null; get_many: a list of those;
     * stores: ['status', 'cas']; delete/touch/flush: bool (OK);
     * incr/decr: the new value or null.
     */
    public static function decodeCache(string $op, string $b): mixed
    {
        $r = new Reader(self::CACHE . " $op", $b);
        $s = $r->status();
        switch ($op) {
            case 'get':
            case 'gat':
                if ($s !== 'OK') {
                    $r->end();
                    return null;
                }
                $flags = $r->u32('flags');
                $cas = $r->u64('cas');
                return ['value' => $r->rest(), 'flags' => $flags, 'cas' => $cas];
            case 'get_many':
                $n = $r->u16('n');
                $items = [];
                for ($i = 0; $i < $n; $i++) {
                    if ($r->status() !== 'OK') {
                        $items[] = null;
                        continue;
                    }
                    $flags = $r->u32('flags');
                    $cas = $r->u64('cas');
                    $items[] = ['value' => $r->bytes($r->u32('vlen'), 'value'), 'flags' => $flags, 'cas' => $cas];
                }
                $r->end();
                return $items;
            case 'set':
            case 'add':
            case 'replace':
            case 'append':
            case 'prepend':
            case 'cas':
                $cas = $s === 'OK' ? $r->u64('cas') : 0;
                $r->end();
                return ['status' => $s, 'cas' => $cas];
            case 'incr':
            case 'decr':
                $v = $s === 'OK' ? $r->u64('value') : null;
                $r->end();
                return $v;
            default:
                $r->end();
                return $s === 'OK';
        }
    }

    /**
     * get: ['rev', 'entry' => ['value', 'create_rev', 'mod_rev', 'version'] or null];
     * put/delete: ['status', 'rev']; range: ['rev', 'more', 'items' => [['key',
     * 'value', 'create_rev', 'mod_rev', 'version'], ...]]; count: ['rev',
     * 'count']; watch: ['rev', 'events' => [['type' => 'put'|'delete', 'key', ...]]].
     */
    public static function decodeKv(string $op, string $b): array
    {
        $r = new Reader(self::KV . " $op", $b);
        $s = $r->status();
        if ($op === 'delete' && $s === 'NOT_FOUND' && $r->left() === 0) {
            return ['status' => $s, 'rev' => 0];
        }
        $rev = $r->u64('rev');
        switch ($op) {
            case 'get':
                if ($s !== 'OK') {
                    $r->end();
                    return ['rev' => $rev, 'entry' => null];
                }
                $c = $r->u64('create_rev');
                $m = $r->u64('mod_rev');
                $v = $r->u64('version');
                return ['rev' => $rev, 'entry' => ['value' => $r->rest(), 'create_rev' => $c, 'mod_rev' => $m,
                    'version' => $v]];
            case 'put':
            case 'delete':
                $r->end();
                return ['status' => $s, 'rev' => $rev];
            case 'count':
                $n = $r->u64('count');
                $r->end();
                return ['rev' => $rev, 'count' => $n];
            case 'range':
                $more = $r->u8('more') !== 0;
                $n = $r->count('n');
                $items = [];
                for ($i = 0; $i < $n; $i++) {
                    $items[] = $r->entry();
                }
                $r->end();
                return ['rev' => $rev, 'more' => $more, 'items' => $items,
                    'next_key' => $more && $n > 0 ? $items[$n - 1]['key'] . "\0" : null];
            case 'watch':
                $n = $r->count('n');
                $events = [];
                for ($i = 0; $i < $n; $i++) {
                    $t = $r->u8('type');
                    if ($t > 1) {
                        throw $r->fail("unknown event type $t");
                    }
                    $events[] = ['type' => $t === 0 ? 'put' : 'delete'] + $r->entry();
                }
                $r->end();
                return ['rev' => $rev, 'events' => $events];
        }
        throw new InvalidArgumentException("unknown ferry.kv op $op");
    }

    /** next: list of int ids; decode: ['unix_ms', 'node', 'seq']. */
    public static function decodeId(string $op, string $b): array
    {
        $r = new Reader(self::ID . " $op", $b);
        $r->status();
        if ($op === 'next') {
            $n = $r->count('n');
            $ids = [];
            for ($i = 0; $i < $n; $i++) {
                $ids[] = $r->u64('id');
            }
            $r->end();
            return $ids;
        }
        $out = ['unix_ms' => $r->u64('unix_ms'), 'node' => $r->u16('node'), 'seq' => $r->u16('seq')];
        $r->end();
        return $out;
    }

    /**
     * A ferry.queue request: [routing key (the queue's name; stats without
     * one: every queue), payload]. $a: push 'payload', 'priority',
     * 'delay_ms', 'visibility_ms', 'max_deliveries', 'dedup'; reserve
     * 'wait_ms', 'visibility_ms'; ack/release/touch/bury 'id', 'token',
     * release 'delay_ms' or 'backoff' => true, touch 'visibility_ms', bury
     * 'reason'; peek 'which' (ready, delayed, dead, reserved), 'limit';
     * redrive 'limit'; configure 'settings' (an array sent as a JSON
     * object, or the JSON text).
     *
     * @return array{0: string, 1: string}
     */
    public static function encodeQueue(string $op, ?string $queue, array $a = []): array
    {
        $code = self::QUEUE_OPS[$op] ?? throw new InvalidArgumentException("unknown ferry.queue op $op");
        $p = chr($code);
        $u32 = static fn(string $k): string => pack('N', self::num(self::int($a[$k] ?? 0, $k), 32, $k));
        switch ($op) {
            case 'push':
                $prio = self::int($a['priority'] ?? 0, 'priority');
                if ($prio < -32768 || $prio > 32767) {
                    throw new InvalidArgumentException('priority must be an integer from -32768 to 32767');
                }
                $dedup = (string)($a['dedup'] ?? '');
                $p .= pack('n', $prio & 0xffff) . $u32('delay_ms') . $u32('visibility_ms')
                    . pack('n', self::num(self::int($a['max_deliveries'] ?? 0, 'max_deliveries'), 16, 'max_deliveries'))
                    . chr(self::num(strlen($dedup), 8, 'dedup length')) . $dedup . (string)($a['payload'] ?? '');
                break;
            case 'reserve':
                $p .= $u32('wait_ms') . $u32('visibility_ms');
                break;
            case 'ack':
            case 'release':
            case 'touch':
            case 'bury':
                $p .= self::u64($a['id'] ?? 0, 'id') . self::u64($a['token'] ?? 0, 'token');
                if ($op === 'release') {
                    $delay = $a['delay_ms'] ?? null;
                    if (!empty($a['backoff'])) {
                        if ($delay !== null) {
                            throw new InvalidArgumentException('release takes delay_ms or backoff, not both');
                        }
                        $p .= pack('N', self::RELEASE_BACKOFF);
                    } else {
                        $d = self::num(self::int($delay ?? 0, 'delay_ms'), 32, 'delay_ms');
                        if ($d === self::RELEASE_BACKOFF) {
                            throw new InvalidArgumentException('delay_ms must be below 4294967295 '
                                . "(backoff => true releases by the queue's backoff_ms)");
                        }
                        $p .= pack('N', $d);
                    }
                } elseif ($op === 'touch') {
                    $p .= $u32('visibility_ms');
                } elseif ($op === 'bury') {
                    $p .= (string)($a['reason'] ?? '');
                }
                break;
            case 'peek':
                $which = $a['which'] ?? 'ready';
                $w = self::PEEK_WHICH[$which] ?? throw new InvalidArgumentException(
                    "which must be ready, delayed, dead or reserved, not $which");
                $p .= chr($w) . pack('n', self::num(self::int($a['limit'] ?? 0, 'limit'), 16, 'limit'));
                break;
            case 'redrive':
                $p .= $u32('limit');
                break;
            case 'configure':
                $st = $a['settings'] ?? [];
                if (is_array($st)) {
                    // An empty array is an empty object, not a list.
                    $st = $st === [] ? '{}' : json_encode($st, JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR);
                }
                if (!is_string($st)) {
                    throw new \TypeError('settings must be an array or its JSON text');
                }
                $p .= $st;
                break;
        }
        return [(string)$queue, $p];
    }

    private static function int(mixed $v, string $what): int
    {
        if (!is_int($v)) {
            throw new InvalidArgumentException("$what must be an integer");
        }
        return $v;
    }

    /**
     * A ferry.queue reply: push ['id', 'dup']; reserve the job ['id',
     * 'token', 'attempts', 'priority', 'payload'] or null (EMPTY);
     * ack/release/bury ['status'] (OK, STALE, NOT_FOUND); touch ['status',
     * 'visibility_ms']; peek a list of ['id', 'attempts', 'priority',
     * 'state', 'age_ms', 'reason', 'payload'] or null (NOT_FOUND);
     * stats/configure the JSON as an array or null; redrive/purge the
     * count or null; pause/resume/delete bool (OK).
     */
    public static function decodeQueue(string $op, string $b): mixed
    {
        $r = new Reader(self::QUEUE . " $op", $b, self::QUEUE_STATUS);
        switch ($op) {
            case 'push':
                $r->expect('OK');
                $id = $r->u64('id');
                $dup = $r->u8('dup');
                if ($dup > 1) {
                    throw $r->fail("dup is $dup, not 0 or 1");
                }
                $r->end();
                return ['id' => $id, 'dup' => $dup === 1];
            case 'reserve':
                if ($r->expect('OK', 'EMPTY') === 'EMPTY') {
                    $r->end();
                    return null;
                }
                $id = $r->u64('id');
                $token = $r->u64('token');
                $attempts = $r->u32('attempts');
                $prio = $r->i16('priority');
                return ['id' => $id, 'token' => $token, 'attempts' => $attempts, 'priority' => $prio,
                    'payload' => $r->rest()];
            case 'ack':
            case 'release':
            case 'bury':
                $s = $r->expect('OK', 'STALE', 'NOT_FOUND');
                $r->end();
                return ['status' => $s];
            case 'touch':
                $s = $r->expect('OK', 'STALE', 'NOT_FOUND');
                $out = ['status' => $s, 'visibility_ms' => $s === 'OK' ? $r->u32('visibility_ms') : 0];
                $r->end();
                return $out;
            case 'peek':
                if ($r->expect('OK', 'NOT_FOUND') !== 'OK') {
                    $r->end();
                    return null;
                }
                $n = $r->u16('n');
                $entries = [];
                for ($i = 0; $i < $n; $i++) {
                    $id = $r->u64('id');
                    $attempts = $r->u32('attempts');
                    $prio = $r->i16('priority');
                    $st = $r->u8('state');
                    $state = self::JOB_STATES[$st] ?? throw $r->fail("unknown job state $st");
                    $age = $r->u64('age_ms');
                    $rlen = $r->u16('reason_len');
                    $plen = $r->u32('payload_len');
                    $entries[] = ['id' => $id, 'attempts' => $attempts, 'priority' => $prio, 'state' => $state,
                        'age_ms' => $age, 'reason' => $r->bytes($rlen, 'reason'),
                        'payload' => $r->bytes($plen, 'payload')];
                }
                $r->end();
                return $entries;
            case 'stats':
            case 'configure':
                if ($r->expect('OK', 'NOT_FOUND') !== 'OK') {
                    $r->end();
                    return null;
                }
                try {
                    $j = json_decode($r->rest(), true, 64, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
                } catch (\JsonException $e) {
                    throw $r->fail("the $op JSON: " . $e->getMessage());
                }
                if (!is_array($j)) {
                    throw $r->fail("the $op JSON is not an object");
                }
                return $j;
            case 'redrive':
            case 'purge':
                if ($r->expect('OK', 'NOT_FOUND') !== 'OK') {
                    $r->end();
                    return null;
                }
                $n = $r->u64($op === 'redrive' ? 'moved' : 'removed');
                $r->end();
                return $n;
            case 'pause':
            case 'resume':
            case 'delete':
                $s = $r->expect('OK', 'NOT_FOUND');
                $r->end();
                return $s === 'OK';
        }
        throw new InvalidArgumentException("unknown ferry.queue op $op");
    }

    /**
     * A ferry.topic request: [routing key (publish's 'subject', subscribe's
     * 'pattern'; ferryd checks them), payload]. $a: publish 'message';
     * subscribe 'group' (at most 255 bytes), 'max_pending', 'policy'
     * (drop_oldest, close); poll 'sub_id', 'wait_ms', 'max_msgs';
     * unsubscribe 'sub_id'; stats 'sub_id' (absent or null: the totals).
     *
     * @return array{0: string, 1: string}
     */
    public static function encodeTopic(string $op, array $a = []): array
    {
        $code = self::TOPIC_OPS[$op] ?? throw new InvalidArgumentException("unknown ferry.topic op $op");
        $p = chr($code);
        $key = '';
        $u32 = static fn(string $k): string => pack('N', self::num(self::int($a[$k] ?? 0, $k), 32, $k));
        switch ($op) {
            case 'publish':
                $key = (string)($a['subject'] ?? '');
                $p .= (string)($a['message'] ?? '');
                break;
            case 'subscribe':
                $key = (string)($a['pattern'] ?? '');
                $group = (string)($a['group'] ?? '');
                $policy = $a['policy'] ?? 'drop_oldest';
                $pol = self::TOPIC_POLICY[$policy] ?? throw new InvalidArgumentException(
                    "policy must be drop_oldest or close, not $policy");
                $p .= chr(self::num(strlen($group), 8, 'group length (at most 255 bytes)')) . $group
                    . $u32('max_pending') . chr($pol);
                break;
            case 'poll':
                $p .= self::u64($a['sub_id'] ?? 0, 'sub_id') . $u32('wait_ms') . $u32('max_msgs');
                break;
            case 'unsubscribe':
                $p .= self::u64($a['sub_id'] ?? 0, 'sub_id');
                break;
            case 'stats':
                if (isset($a['sub_id'])) {
                    $p .= self::u64($a['sub_id'], 'sub_id');
                }
                break;
        }
        return [$key, $p];
    }

    /**
     * A ferry.topic reply: publish the receivers (int); subscribe the
     * sub_id; poll ['messages' => list of ['seq', 'subject', 'payload'],
     * 'dropped'] (messages empty: EMPTY) or null (NOT_FOUND); unsubscribe
     * bool (OK); stats the JSON as an array or null. A status the op never
     * answers, or an OK poll without a message, is malformed.
     */
    public static function decodeTopic(string $op, string $b): mixed
    {
        $r = new Reader(self::TOPIC . " $op", $b, self::TOPIC_STATUS);
        switch ($op) {
            case 'publish':
                $r->expect('OK');
                $n = $r->u32('receivers');
                $r->end();
                return $n;
            case 'subscribe':
                $r->expect('OK');
                $id = $r->u64('sub_id');
                $r->end();
                return $id;
            case 'poll':
                $s = $r->expect('OK', 'EMPTY', 'NOT_FOUND');
                if ($s === 'NOT_FOUND') {
                    $r->end();
                    return null;
                }
                $dropped = $r->u64('dropped');
                $messages = [];
                if ($s === 'OK') {
                    $n = $r->count('n');
                    if ($n === 0) {
                        throw $r->fail('OK without a message (that is EMPTY)');
                    }
                    for ($i = 0; $i < $n; $i++) {
                        $seq = $r->u64('seq');
                        $subject = $r->bytes($r->u16('subject_len'), 'subject');
                        $messages[] = ['seq' => $seq, 'subject' => $subject,
                            'payload' => $r->bytes($r->u32('len'), 'payload')];
                    }
                }
                $r->end();
                return ['messages' => $messages, 'dropped' => $dropped];
            case 'unsubscribe':
                $s = $r->expect('OK', 'NOT_FOUND');
                $r->end();
                return $s === 'OK';
            case 'stats':
                if ($r->expect('OK', 'NOT_FOUND') !== 'OK') {
                    $r->end();
                    return null;
                }
                try {
                    $j = json_decode($r->rest(), true, 64, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
                } catch (\JsonException $e) {
                    throw $r->fail('the stats JSON: ' . $e->getMessage());
                }
                if (!is_array($j)) {
                    throw $r->fail('the stats JSON is not an object');
                }
                return $j;
        }
        throw new InvalidArgumentException("unknown ferry.topic op $op");
    }
}
