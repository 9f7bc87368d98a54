// SPDX-License-Identifier: MIT
'use strict';
/*
 * index.js - the ferry client for Node.js: Client (callers), Worker
 * (services), the errors (FerryError and one subclass per code) and the
 * wire codec.
 */
const errors = require('./errors');
const codec = require('./codec');
const { Client } = require('./client');
const { Worker, Job } = require('./worker');
const { parseAddr, PROTOCOL_VERSION } = require('./conn');
const servants = require('./servants');

servants.install(Client);

module.exports = { Client, Worker, Job, codec, servants, parseAddr, PROTOCOL_VERSION, ...errors };
