import { createContext, useContext } from 'react';
import type { MeView } from '@gateway/shared';

export const MeContext = createContext<MeView | undefined>(undefined);

/** The signed-in user (the shell renders pages only once it is known). */
export function useMe(): MeView {
  const me = useContext(MeContext);
  if (!me) throw new Error('useMe outside the signed-in shell');
  return me;
}

export const isAdmin = (me: MeView) => me.role === 'admin';
export const canReadAudit = (me: MeView) => me.role === 'admin' || me.role === 'auditor';
