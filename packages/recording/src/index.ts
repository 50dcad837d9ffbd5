export { createRecorder, readRecording, recordingPath, type RecorderOptions, type Recording } from './recorder.js';
