import { adminThreadsQuerySchema, createThreadSchema, updateThreadSchema } from '@gateway/shared';
import { Router } from 'express';
import { z } from 'zod';
import { parseOr400, validate } from '../../platform/http/validate.ts';
import { principalOf } from '../../core/principal.ts';
import type { ChatService } from './chat.service.ts';

const idParams = z.object({ id: z.string().uuid('must be a thread id') });

/** `/api/threads` (the caller's own), `/api/admin/threads` (review), `/api/chat/status`. */
export function chatRoutes(deps: { chat: ChatService }): Router {
  const { chat } = deps;
  const router = Router();
  router.get('/api/chat/status', (_req, res) => {
    res.json(chat.status());
  });
  router.get('/api/threads', async (_req, res) => {
    res.json({ threads: await chat.listOwn(principalOf(res)) });
  });
  router.post('/api/threads', validate({ body: createThreadSchema }), async (req, res) => {
    const body = req.body as z.infer<typeof createThreadSchema>;
    res.status(201).json(await chat.createThread(principalOf(res), body.title));
  });
  router.get('/api/threads/:id', async (req, res) => {
    const { id } = parseOr400(idParams, req.params, 'params');
    res.json(await chat.getThread(principalOf(res), id));
  });
  router.patch('/api/threads/:id', validate({ body: updateThreadSchema }), async (req, res) => {
    const { id } = parseOr400(idParams, req.params, 'params');
    const body = req.body as z.infer<typeof updateThreadSchema>;
    res.json(await chat.renameThread(principalOf(res), id, body.title));
  });
  router.delete('/api/threads/:id', async (req, res) => {
    const { id } = parseOr400(idParams, req.params, 'params');
    await chat.deleteThread(principalOf(res), id);
    res.status(204).end();
  });
  router.get('/api/admin/threads', async (req, res) => {
    const query = parseOr400(adminThreadsQuerySchema, req.query, 'query');
    res.json({ threads: await chat.listAll(principalOf(res), query) });
  });
  return router;
}
