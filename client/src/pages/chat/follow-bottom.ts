import { useEffect, useRef } from 'react';

/**
 * Keeps the page scrolled to the newest message: once when the thread has loaded, then on
 * each change while the reader is at the bottom (not after they scrolled up to read).
 */
export function useFollowBottom(loaded: boolean, content: string) {
  const follow = useRef(true);
  useEffect(() => {
    const onScroll = () => {
      follow.current = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 120;
    };
    window.addEventListener('scroll', onScroll, { passive: true });
    return () => window.removeEventListener('scroll', onScroll);
  }, []);
  useEffect(() => {
    if (loaded) window.scrollTo({ top: document.documentElement.scrollHeight });
  }, [loaded]);
  useEffect(() => {
    if (follow.current) window.scrollTo({ top: document.documentElement.scrollHeight });
  }, [content]);
}
